"""Usage tracking: one row per request in `system.serving.endpoint_usage` (the columns of
Databricks' system table, plus ladle's `endpoint_name`, `endpoint_id`, `served_entity_name`,
request/response sizes and execution time, since ladle has no `served_entities` table to
join), a Delta table at `LADLE_HOME/tables/system/serving/endpoint_usage`; and the summary
behind `GET /api/2.0/ladle/usage` and `ladle usage`.

Token counts come from the answer's `usage`; when an LLM answer reports none they are
estimated as (characters + 1) // 4, like Databricks; custom models without `usage` count 0.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ladle.telemetry.tables import TableRef

if TYPE_CHECKING:
    from ladle.telemetry.recorder import Exchange

USAGE_TABLE = TableRef("system.serving.endpoint_usage", (
    ("account_id", "string"),
    ("workspace_id", "string"),
    ("served_entity_id", "string"),
    ("client_request_id", "string"),
    ("databricks_request_id", "string"),
    ("requester", "string"),
    ("status_code", "int"),
    ("request_time", "timestamp"),
    ("input_token_count", "long"),
    ("output_token_count", "long"),
    ("input_character_count", "long"),
    ("output_character_count", "long"),
    ("usage_context", "map<string,string>"),
    ("request_streaming", "bool"),
    ("endpoint_name", "string"),
    ("endpoint_id", "string"),
    ("served_entity_name", "string"),
    ("request_size_bytes", "long"),
    ("response_size_bytes", "long"),
    ("execution_duration_ms", "long"),
))

GROUP_BY = {"endpoint": "endpoint_name", "requester": "requester", "day": "day"}
SUMS = ("input_token_count", "output_token_count", "input_character_count", "output_character_count",
        "request_size_bytes", "response_size_bytes")


def usage_row(ex: "Exchange", account_id: str, workspace_id: str) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "workspace_id": workspace_id,
        "served_entity_id": ex.served_entity_id,
        "client_request_id": ex.client_request_id,
        "databricks_request_id": ex.request_id,
        "requester": ex.requester,
        "status_code": ex.status,
        "request_time": datetime.fromtimestamp(ex.started_ms / 1000, tz=timezone.utc),
        "input_token_count": ex.input_tokens,
        "output_token_count": ex.output_tokens,
        "input_character_count": ex.input_chars,
        "output_character_count": ex.output_chars,
        "usage_context": list((ex.usage_context or {}).items()),
        "request_streaming": ex.streaming,
        "endpoint_name": ex.endpoint_name,
        "endpoint_id": ex.endpoint_id,
        "served_entity_name": ex.entity_name,
        "request_size_bytes": len(ex.request),
        "response_size_bytes": len(ex.response),
        "execution_duration_ms": ex.execution_ms,
    }


def usage_path(tables_root: Path) -> Path:
    return Path(tables_root).joinpath(*USAGE_TABLE.parts)


def read_usage(tables_root: Path) -> Any | None:
    """The usage table as a pyarrow Table, or None when it was never written."""
    path = usage_path(tables_root)
    if not (path / "_delta_log").is_dir():
        return None
    from deltalake import DeltaTable

    return DeltaTable(str(path)).to_pyarrow_table()


def summarize(table: Any, group_by: str, endpoint: str | None = None,
              endpoint_ids: set[str] | None = None) -> list[dict[str, Any]]:
    """Requests, errors, tokens, characters and bytes per endpoint, requester or UTC day.
    `endpoint_ids` (when given) keeps only those endpoints' rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if endpoint is not None:
        table = table.filter(pc.equal(table["endpoint_name"], endpoint))
    if endpoint_ids is not None:
        table = table.filter(pc.is_in(table["endpoint_id"], value_set=pa.array(sorted(endpoint_ids),
                                                                               pa.string())))
    day = pc.cast(table["request_time"], pa.timestamp("us")).cast(pa.date32()).cast(pa.string())
    errors = pc.cast(pc.greater_equal(table["status_code"], 400), pa.int64())
    t = table.append_column("day", day).append_column("error", errors)
    key = GROUP_BY[group_by]
    agg = t.group_by(key).aggregate([("databricks_request_id", "count"), ("error", "sum")]
                                    + [(c, "sum") for c in SUMS])
    rows = []
    for r in agg.to_pylist():
        row = {group_by: r[key], "request_count": r["databricks_request_id_count"],
               "error_count": r["error_sum"] or 0}
        row.update({c: r[f"{c}_sum"] or 0 for c in SUMS})
        rows.append(row)
    rows.sort(key=lambda x: (str(x[group_by]) if group_by == "day" else "", -x["request_count"],
                             str(x[group_by])))
    return rows
