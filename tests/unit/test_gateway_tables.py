"""The asynchronous batched table writer (memory sink), drop accounting in payload rows, and
the Delta sink read back with DuckDB; the usage summary."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from ladle.telemetry.inference_tables import MAX_LOGGED_BYTES, payload_table
from ladle.telemetry.recorder import Exchange, Recorder
from ladle.telemetry.tables import DeltaSink, MemorySink, TableWriter
from ladle.telemetry.usage import USAGE_TABLE, summarize_usage
from ladle.testing.waiting import wait_until_async

PAYLOAD = payload_table({"enabled": True, "catalog_name": "main", "schema_name": "ml",
                         "table_name_prefix": "iris"}, "iris")


def ex(i: int, **kw) -> Exchange:
    base = dict(request_id=f"r{i}", endpoint_name="iris", endpoint_id="e1", requester="alice",
                started_ms=1_700_000_000_000 + i, entity_name="iris-1", entity_key="k1", status=200,
                request=b'{"inputs": [1]}', response=b'{"predictions": [0]}')
    base.update(kw)
    return Exchange(**base)


def test_payload_table_names():
    assert PAYLOAD.name == "main.ml.iris_payload"
    assert payload_table({"enabled": True, "catalog_name": "c", "schema_name": "s"}, "my-ep").name == "c.s.my-ep_payload"
    assert payload_table({"enabled": False, "catalog_name": "c"}, "x") is None


async def test_flush_by_rows_by_interval_and_everything_on_stop():
    sink = MemorySink()
    w = TableWriter(sink, flush_rows=3, flush_interval_s=1.0)
    w.start()
    rec = Recorder(w, "acct", "ws")
    for i in range(3):
        rec.record(ex(i), usage=True, payload=None)
    await wait_until_async(lambda: len(sink.tables.get(USAGE_TABLE.name, [])) == 3, timeout=0.8,
                           what="flush_rows reached: written at once (before the 1 s timer)")
    rec.record(ex(3), usage=True, payload=None)
    await wait_until_async(lambda: len(sink.tables[USAGE_TABLE.name]) == 4, timeout=5,
                           what="below flush_rows: written by the timer")
    await w.stop()
    sink = MemorySink()
    w = TableWriter(sink, flush_rows=3, flush_interval_s=60)     # neither rows nor timer flush
    w.start()
    rec = Recorder(w, "acct", "ws")
    for i in range(4, 6):
        rec.record(ex(i), usage=False, payload=PAYLOAD)
    await asyncio.sleep(0)
    assert PAYLOAD.name not in sink.tables
    await w.stop()                                 # graceful stop: nothing lost
    assert [r["databricks_request_id"] for r in sink.tables[PAYLOAD.name]] == ["r4", "r5"]
    row = sink.tables[PAYLOAD.name][0]
    assert row["date"] == date(2023, 11, 14) and row["timestamp_ms"] == 1_700_000_000_004
    assert row["served_entity_id"] and len(row["served_entity_id"]) == 32
    assert row["logging_error_codes"] == [] and row["requester"] == "alice"


async def test_overload_drops_are_bounded_counted_and_reported_in_a_later_row():
    sink = MemorySink()
    w = TableWriter(sink, flush_rows=10_000, flush_interval_s=60, max_rows=5)
    rec = Recorder(w, "acct", "ws")
    for i in range(12):                            # no flusher running: the queue fills up
        rec.record(ex(i), usage=False, payload=PAYLOAD)
    assert len(w.queue) == 5 and w.dropped[PAYLOAD.name] == 7
    await w.flush()
    rec.record(ex(99), usage=False, payload=PAYLOAD)
    await w.flush()
    rows = sink.tables[PAYLOAD.name]
    assert len(rows) == 6 and rows[-1]["logging_error_codes"] == ["ROWS_DROPPED:7"]
    rec.record(ex(100), usage=False, payload=PAYLOAD)
    await w.flush()
    assert sink.tables[PAYLOAD.name][-1]["logging_error_codes"] == []


async def test_bytes_bound_and_oversize_bodies():
    sink = MemorySink()
    w = TableWriter(sink, max_bytes=4000)
    rec = Recorder(w, "acct", "ws")
    big = b"x" * (MAX_LOGGED_BYTES + 1)
    rec.record(ex(1, request=big), usage=False, payload=PAYLOAD)     # stored NULL: small row
    rec.record(ex(2, response=b"y" * 5000), usage=False, payload=PAYLOAD)   # does not fit
    await w.flush()
    (row,) = sink.tables[PAYLOAD.name]
    assert row["request"] is None and row["logging_error_codes"] == ["MAX_REQUEST_SIZE_EXCEEDED"]
    assert w.dropped[PAYLOAD.name] == 1


async def test_a_failing_sink_counts_rows_as_dropped():
    w = TableWriter(MemorySink(fail=True))
    Recorder(w, "a", "w").record(ex(1), usage=True, payload=None)
    await w.flush()
    assert w.write_errors == 1 and w.dropped[USAGE_TABLE.name] == 1


async def test_delta_tables_read_back_with_duckdb(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    from deltalake import DeltaTable

    w = TableWriter(DeltaSink(tmp_path), flush_rows=2)
    rec = Recorder(w, "acct", "ws")
    for i in range(5):
        rec.record(ex(i, requester="alice" if i % 2 else "bob", status=200 if i < 4 else 429,
                      input_tokens=10, output_tokens=i, usage_context={"project": "p1"}),
                   usage=True, payload=PAYLOAD)
    await w.flush()
    path = tmp_path / "main" / "ml" / "iris_payload"
    files = DeltaTable(str(path)).file_uris()
    con = duckdb.connect()
    rows = con.execute(
        "SELECT databricks_request_id, status_code, request, len(logging_error_codes) FROM read_parquet(?) "
        "ORDER BY timestamp_ms", [files]).fetchall()
    assert rows[0] == ("r0", 200, '{"inputs": [1]}', 0) and len(rows) == 5
    usage_files = DeltaTable(str(tmp_path / "system" / "serving" / "endpoint_usage")).file_uris()
    by_user = con.execute(
        "SELECT requester, count(*), sum(output_token_count), any_value(usage_context['project']) "
        "FROM read_parquet(?) GROUP BY requester ORDER BY requester", [usage_files]).fetchall()
    assert by_user == [("alice", 2, 4, "p1"), ("bob", 3, 6, "p1")]

    assert summarize_usage(tmp_path, "requester") == [
        {"requester": "bob", "request_count": 3, "error_count": 1, "input_token_count": 30,
         "output_token_count": 6, "input_character_count": 0, "output_character_count": 0,
         "request_size_bytes": 45, "response_size_bytes": 60},
        {"requester": "alice", "request_count": 2, "error_count": 0, "input_token_count": 20,
         "output_token_count": 4, "input_character_count": 0, "output_character_count": 0,
         "request_size_bytes": 30, "response_size_bytes": 40}]
    (day,) = summarize_usage(tmp_path, "day")
    assert day["day"] == "2023-11-14" and day["request_count"] == 5
    assert summarize_usage(tmp_path, "endpoint", endpoint="other") == []
    assert summarize_usage(tmp_path, "endpoint", endpoint_ids={"nope"}) == []
    assert summarize_usage(tmp_path, "endpoint", endpoint_ids=set()) == []
    (mine,) = summarize_usage(tmp_path, "endpoint", endpoint_ids={"e1"}, endpoint="iris")
    assert mine["endpoint"] == "iris" and mine["request_count"] == 5 and mine["error_count"] == 1
    assert summarize_usage(tmp_path / "empty", "day") is None
