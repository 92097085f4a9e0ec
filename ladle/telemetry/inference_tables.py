"""Inference tables: one row per request with the request and response payloads, in
`<catalog>.<schema>.<table_name_prefix>_payload` (Databricks' payload columns), stored as a
Delta table at `LADLE_HOME/tables/<catalog>/<schema>/<prefix>_payload`.

Bodies over `MAX_LOGGED_BYTES` are stored as NULL with `MAX_REQUEST_SIZE_EXCEEDED` /
`MAX_RESPONSE_SIZE_EXCEEDED` in `logging_error_codes`; rows lost to a full queue or a failed
write are reported as `ROWS_DROPPED:<n>` in the next row that is written. A streamed answer
is logged assembled (one `chat.completion` / `text_completion`, or the list of its payloads).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ladle.telemetry.tables import TableRef

if TYPE_CHECKING:
    from ladle.telemetry.recorder import Exchange

MAX_LOGGED_BYTES = 1024 * 1024

PAYLOAD_COLUMNS = (
    ("databricks_request_id", "string"),
    ("client_request_id", "string"),
    ("date", "date"),
    ("timestamp_ms", "long"),
    ("status_code", "int"),
    ("sampling_fraction", "double"),
    ("execution_duration_ms", "long"),
    ("request", "string"),
    ("response", "string"),
    ("served_entity_id", "string"),
    ("logging_error_codes", "list<string>"),
    ("requester", "string"),
)


def payload_table(cfg: dict[str, Any] | None, endpoint_name: str) -> TableRef | None:
    """The payload table of an endpoint's `inference_table_config`, when enabled."""
    if not cfg or not cfg.get("enabled"):
        return None
    catalog = cfg.get("catalog_name") or "main"
    schema = cfg.get("schema_name") or "default"
    prefix = cfg.get("table_name_prefix") or endpoint_name
    return TableRef(f"{catalog}.{schema}.{prefix}_payload", PAYLOAD_COLUMNS)


def _text(body: bytes | str | None, code: str, codes: list[str]) -> str | None:
    if body is None:
        return None
    if len(body) > MAX_LOGGED_BYTES:
        codes.append(code)
        return None
    return body.decode("utf-8", "replace") if isinstance(body, bytes) else body


def payload_row(ex: "Exchange", extra_codes: list[str]) -> dict[str, Any]:
    codes: list[str] = []
    request = _text(ex.request, "MAX_REQUEST_SIZE_EXCEEDED", codes)
    response = _text(ex.logged_response(), "MAX_RESPONSE_SIZE_EXCEEDED", codes)
    when = datetime.fromtimestamp(ex.started_ms / 1000, tz=timezone.utc)
    return {
        "databricks_request_id": ex.request_id,
        "client_request_id": ex.client_request_id,
        "date": when.date(),
        "timestamp_ms": ex.started_ms,
        "status_code": ex.status,
        "sampling_fraction": 1.0,
        "execution_duration_ms": ex.execution_ms,
        "request": request,
        "response": response,
        "served_entity_id": ex.served_entity_id,
        "logging_error_codes": codes + extra_codes,
        "requester": ex.requester,
    }
