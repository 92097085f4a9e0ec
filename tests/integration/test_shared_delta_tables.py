"""Several servers' writers append to the same Delta tables at once (real deltalake on a
local directory): every row lands exactly once, also when a writer is dropped with rows
only in its journal (a killed server) and a new one takes its journal over."""

from __future__ import annotations

import asyncio
import collections

from deltalake import DeltaTable

from ladle.telemetry.recorder import Exchange, Recorder
from ladle.telemetry.spool import Spool
from ladle.telemetry.spooled import SpooledWriter
from ladle.telemetry.tables import DeltaSink
from ladle.telemetry.usage import USAGE_TABLE, usage_path


def ex(rid: str) -> Exchange:
    return Exchange(request_id=rid, endpoint_name="iris", endpoint_id="e1", requester="alice",
                    entity_name="iris-1", entity_key="k1", status=200, request=b"{}", response=b"{}")


def test_three_writers_at_once_and_a_killed_one_write_every_row_once(tmp_path):
    tables = tmp_path / "tables"

    async def main() -> None:
        # each writer holds its own journal, as each server process does (Spool.claim)
        writers = [SpooledWriter(DeltaSink(tables), Spool.try_claim(tmp_path / "spool" / str(i)), flush_rows=7)
                   for i in range(3)]
        for w in writers:
            w.start()
        recs = [Recorder(w, "a", "w") for w in writers]
        for n in range(60):                       # interleaved: the flushes race each other
            for i, rec in enumerate(recs):
                rec.record(ex(f"s{i}-{n}"), usage=True, payload=None)
            await asyncio.sleep(0)
        await asyncio.gather(*(w.flush() for w in writers))
        # writer 2's process dies with 20 more rows in its journal only: its flushing task
        # is gone (ended here without its final flush), then its journal is closed
        writers[2]._stopping = True
        writers[2]._wake.set()
        await writers[2]._task
        for n in range(60, 80):
            recs[2].record(ex(f"s2-{n}"), usage=True, payload=None)
        writers[2].spool.close()
        await asyncio.gather(*(w.stop() for w in writers[:2]))
        again = SpooledWriter(DeltaSink(tables), Spool.try_claim(tmp_path / "spool" / "2"))
        await again.flush()
        await again.stop()

    asyncio.run(main())
    ids = collections.Counter(DeltaTable(str(usage_path(tables))).to_pyarrow_table(
        columns=["databricks_request_id"]).column("databricks_request_id").to_pylist())
    expected = {f"s{i}-{n}" for i in range(3) for n in range(60)} | {f"s2-{n}" for n in range(60, 80)}
    assert sorted(k for k, v in ids.items() if v > 1) == []
    assert set(ids) == expected and set(ids.values()) == {1}
    assert USAGE_TABLE.name == "system.serving.endpoint_usage"


def test_writers_creating_the_table_at_once_create_it_once(tmp_path):
    """Four writers (threads: delta-rs releases the GIL) append to a table that does not exist
    yet: one creation commit, every row once, each writer's transaction version kept."""
    import json
    import threading

    tables = tmp_path / "tables"
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def write(i: int) -> None:
        sink = DeltaSink(tables)
        rows = [{"databricks_request_id": f"t{i}-{n}"} for n in range(5)]
        start.wait()
        try:
            sink.append(USAGE_TABLE, rows, (f"app-{i}", 7))
        except BaseException as e:   # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    log_dir = usage_path(tables) / "_delta_log"
    actions = [next(iter(json.loads(line))) for f in sorted(log_dir.glob("*.json")) for line in f.open()]
    assert actions.count("metaData") == 1 and actions.count("protocol") == 1, actions
    sink = DeltaSink(tables)
    assert all(sink.committed(USAGE_TABLE, f"app-{i}") == 7 for i in range(4))
    ids = DeltaTable(str(usage_path(tables))).to_pyarrow_table(columns=["databricks_request_id"])
    assert sorted(ids.column("databricks_request_id").to_pylist()) == sorted(
        f"t{i}-{n}" for i in range(4) for n in range(5))
