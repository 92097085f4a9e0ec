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
KEY_SQL = {"endpoint": "endpoint_name", "requester": "requester",
           # the UTC day, by arithmetic: independent of the session's time zone
           "day": "CAST(DATE '1970-01-01' + CAST(epoch_us(request_time) // 86400000000 AS INTEGER) AS VARCHAR)"}
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


def summarize_usage(tables_root: Path, group_by: str, endpoint: str | None = None,
                    endpoint_ids: set[str] | None = None) -> list[dict[str, Any]] | None:
    """Requests, errors, tokens, characters and bytes per endpoint, requester or UTC day;
    None when the usage table was never written. `endpoint` keeps one endpoint's rows,
    `endpoint_ids` (when given) only those endpoints' rows.

    DuckDB runs the query over the Delta table's live Parquet files: it reads only the
    columns the query names, skips row groups the filters rule out and aggregates the rows as
    they stream, so a call never holds the whole table (bench/usage_table.py measures it).
    Reads files: async callers run it on a worker thread."""
    path = usage_path(tables_root)
    if not (path / "_delta_log").is_dir():
        return None
    import duckdb
    from deltalake import DeltaTable

    files = DeltaTable(str(path)).file_uris()   # the table's live Parquet files (append-only)
    if not files:
        return []
    where, params = [], []
    if endpoint is not None:
        where.append("endpoint_name = ?")
        params.append(endpoint)
    if endpoint_ids is not None:
        where.append("list_contains(?, endpoint_id)")
        params.append(sorted(endpoint_ids))
    key = KEY_SQL[group_by]
    sums = ", ".join(f"coalesce(sum({c}), 0) AS {c}" for c in SUMS)
    sql = (f"SELECT {key} AS k, count(*) AS request_count, "
           f"count(*) FILTER (WHERE status_code >= 400) AS error_count, {sums} FROM read_parquet(?)"
           + (" WHERE " + " AND ".join(where) if where else "") + " GROUP BY k")
    with duckdb.connect() as con:
        cur = con.execute(sql, [files, *params])
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
    out = [{group_by: r.pop("k"), **{n: int(v) for n, v in r.items()}} for r in rows]
    out.sort(key=lambda x: (str(x[group_by]) if group_by == "day" else "", -x["request_count"],
                            str(x[group_by])))
    return out
