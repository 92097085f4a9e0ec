"""The server's table writer as its recorder uses it: flushes by rows, by timer and on stop;
bounds whose drops are counted and reported in a later payload row; oversize bodies; the
Delta sink read back with DuckDB; the usage summary. (The journal itself: test_table_spool.)"""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from ladle.telemetry.inference_tables import MAX_LOGGED_BYTES, payload_table
from ladle.telemetry.recorder import Exchange, Recorder
from ladle.telemetry.spool import Spool
from ladle.telemetry.spooled import SpooledWriter
from ladle.telemetry.tables import DeltaSink, MemorySink
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


async def test_flush_by_rows_by_interval_and_everything_on_stop(tmp_path):
    sink = MemorySink()
    w = SpooledWriter(sink, Spool.claim(tmp_path / "rows"), flush_rows=3, flush_interval_s=60)
    w.start()
    rec = Recorder(w, "acct", "ws")
    for i in range(3):
        rec.record(ex(i), usage=True, payload=None)
    await wait_until_async(lambda: len(sink.tables.get(USAGE_TABLE.name, [])) == 3, timeout=10,
                           what="flush_rows reached: written at once (the timer is 60 s)")
    await w.stop()

    sink = MemorySink()
    w = SpooledWriter(sink, Spool.claim(tmp_path / "timer"), flush_rows=1000, flush_interval_s=0.2)
    w.start()
    Recorder(w, "acct", "ws").record(ex(3), usage=True, payload=None)
    await wait_until_async(lambda: len(sink.tables.get(USAGE_TABLE.name, [])) == 1, timeout=10,
                           what="below flush_rows: written by the timer")
    await w.stop()

    sink = MemorySink()
    w = SpooledWriter(sink, Spool.claim(tmp_path / "stop"), flush_rows=3, flush_interval_s=60)
    w.start()                                      # neither rows nor timer flush
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


async def test_overload_drops_are_bounded_counted_and_reported_in_a_later_row(tmp_path):
    sink = MemorySink()
    w = SpooledWriter(sink, Spool.claim(tmp_path / "spool"), flush_rows=10_000, flush_interval_s=60, max_rows=5)
    rec = Recorder(w, "acct", "ws")
    for i in range(12):                            # no flusher running: the journal fills up
        rec.record(ex(i), usage=False, payload=PAYLOAD)
    assert w.pending == 5 and w.dropped[PAYLOAD.name] == 7
    await w.flush()
    rec.record(ex(99), usage=False, payload=PAYLOAD)
    await w.flush()
    rows = sink.tables[PAYLOAD.name]
    assert [r["databricks_request_id"] for r in rows] == ["r0", "r1", "r2", "r3", "r4", "r99"]
    assert rows[-1]["logging_error_codes"] == ["ROWS_DROPPED:7"]
    assert all(r["logging_error_codes"] == [] for r in rows[:-1])
    rec.record(ex(100), usage=False, payload=PAYLOAD)
    await w.flush()
    assert sink.tables[PAYLOAD.name][-1]["logging_error_codes"] == []
    await w.stop()


async def test_bytes_bound_and_oversize_bodies(tmp_path):
    sink = MemorySink()
    w = SpooledWriter(sink, Spool.claim(tmp_path / "spool"), max_bytes=4000)
    rec = Recorder(w, "acct", "ws")
    big = b"x" * (MAX_LOGGED_BYTES + 1)
    rec.record(ex(1, request=big), usage=False, payload=PAYLOAD)     # stored NULL: small row
    rec.record(ex(2, response=b"y" * 5000), usage=False, payload=PAYLOAD)   # fills the journal
    rec.record(ex(3), usage=False, payload=PAYLOAD)                   # does not fit until drained
    assert w.dropped == {PAYLOAD.name: 1}
    await w.flush()
    rec.record(ex(4), usage=False, payload=PAYLOAD)                   # drained: room again
    await w.stop()
    rows = sink.tables[PAYLOAD.name]
    assert [r["databricks_request_id"] for r in rows] == ["r1", "r2", "r4"]
    assert rows[0]["request"] is None and rows[0]["logging_error_codes"] == ["MAX_REQUEST_SIZE_EXCEEDED"]
    assert rows[1]["response"] == "y" * 5000
    assert rows[2]["logging_error_codes"] == ["ROWS_DROPPED:1"]


async def test_delta_tables_read_back_with_duckdb(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    from deltalake import DeltaTable

    tables = tmp_path / "tables"
    w = SpooledWriter(DeltaSink(tables), Spool.claim(tmp_path / "spool"), flush_rows=2)
    rec = Recorder(w, "acct", "ws")
    for i in range(5):
        rec.record(ex(i, requester="alice" if i % 2 else "bob", status=200 if i < 4 else 429,
                      input_tokens=10, output_tokens=i, usage_context={"project": "p1"}),
                   usage=True, payload=PAYLOAD)
    await w.stop()
    path = tables / "main" / "ml" / "iris_payload"
    files = DeltaTable(str(path)).file_uris()
    con = duckdb.connect()
    rows = con.execute(
        "SELECT databricks_request_id, status_code, request, len(logging_error_codes) FROM read_parquet(?) "
        "ORDER BY timestamp_ms", [files]).fetchall()
    assert rows[0] == ("r0", 200, '{"inputs": [1]}', 0) and len(rows) == 5
    usage_files = DeltaTable(str(tables / "system" / "serving" / "endpoint_usage")).file_uris()
    by_user = con.execute(
        "SELECT requester, count(*), sum(output_token_count), any_value(usage_context['project']) "
        "FROM read_parquet(?) GROUP BY requester ORDER BY requester", [usage_files]).fetchall()
    assert by_user == [("alice", 2, 4, "p1"), ("bob", 3, 6, "p1")]

    assert summarize_usage(tables, "requester") == [
        {"requester": "bob", "request_count": 3, "error_count": 1, "input_token_count": 30,
         "output_token_count": 6, "input_character_count": 0, "output_character_count": 0,
         "request_size_bytes": 45, "response_size_bytes": 60},
        {"requester": "alice", "request_count": 2, "error_count": 0, "input_token_count": 20,
         "output_token_count": 4, "input_character_count": 0, "output_character_count": 0,
         "request_size_bytes": 30, "response_size_bytes": 40}]
    (day,) = summarize_usage(tables, "day")
    assert day["day"] == "2023-11-14" and day["request_count"] == 5
    assert summarize_usage(tables, "endpoint", endpoint="other") == []
    assert summarize_usage(tables, "endpoint", endpoint_ids={"nope"}) == []
    assert summarize_usage(tables, "endpoint", endpoint_ids=set()) == []
    (mine,) = summarize_usage(tables, "endpoint", endpoint_ids={"e1"}, endpoint="iris")
    assert mine["endpoint"] == "iris" and mine["request_count"] == 5 and mine["error_count"] == 1
    assert summarize_usage(tmp_path / "empty", "day") is None
