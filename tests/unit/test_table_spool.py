"""The server's row journal and the writer that drains it: rows survive a writer that is
dropped without a flush (a killed server) and reach their table once; a commit whose answer
was lost is not repeated; torn lines are cut; drained segments are deleted; a table that
keeps failing keeps its rows journaled, then gives up and counts them."""

from __future__ import annotations

import os

from ladle.telemetry.recorder import Exchange, Recorder
from ladle.telemetry.spool import Spool
from ladle.telemetry.spooled import SpooledWriter
from ladle.telemetry.tables import MemorySink
from ladle.telemetry.usage import USAGE_TABLE


def ex(i: int) -> Exchange:
    return Exchange(request_id=f"r{i}", endpoint_name="iris", endpoint_id="e1", requester="alice",
                    started_ms=1_700_000_000_000 + i, entity_name="iris-1", entity_key="k1", status=200,
                    request=b"{}", response=b"{}", usage_context={"p": "1"})


def ids(sink: MemorySink) -> list[str]:
    return [r["databricks_request_id"] for r in sink.tables.get(USAGE_TABLE.name, [])]


async def test_rows_journaled_by_a_killed_writer_are_written_once_by_the_next(tmp_path):
    sink = MemorySink()
    w = SpooledWriter(sink, Spool(tmp_path / "spool"))
    rec = Recorder(w, "acct", "ws")
    for i in range(3):
        rec.record(ex(i), usage=True, payload=None)
    await w.flush()
    for i in range(3, 5):
        rec.record(ex(i), usage=True, payload=None)
    # killed here: r3 and r4 are only in the journal; the next start writes them, not r0-r2 again
    w2 = SpooledWriter(sink, Spool(tmp_path / "spool"))
    await w2.flush()
    assert ids(sink) == ["r0", "r1", "r2", "r3", "r4"]
    row = sink.tables[USAGE_TABLE.name][0]
    assert row["request_time"].year == 2023 and row["usage_context"] == [("p", "1")]
    await w2.stop()


async def test_a_commit_whose_answer_was_lost_is_not_repeated(tmp_path):
    class LostAnswer(MemorySink):
        def append(self, table, rows, txn=None):
            super().append(table, rows, txn)
            if self.batches == 1:
                raise TimeoutError("the commit landed; its answer did not")

    sink = LostAnswer()
    w = SpooledWriter(sink, Spool(tmp_path / "spool"))
    for i in range(3):
        Recorder(w, "a", "w").record(ex(i), usage=True, payload=None)
    await w.flush()                 # fails after committing: the rows stay journaled
    assert w.write_errors == 1 and w.done < w.spool.end
    await w.flush()                 # asks the table what it holds: nothing is written twice
    assert ids(sink) == ["r0", "r1", "r2"] and w.done == w.spool.end


def test_a_torn_last_line_is_cut_and_appends_continue_after_it(tmp_path):
    s = Spool(tmp_path)
    s.append(b'["a"]\n')
    s.close()
    seg = tmp_path / f"{0:020d}.jsonl"
    with open(seg, "ab") as f:
        f.write(b'["tor')                       # a kill in the middle of a write
    s = Spool(tmp_path)
    assert s.end == 6 and seg.read_bytes() == b'["a"]\n'
    s.append(b'["b"]\n')
    assert [line for _, line in s.read(0, 1 << 20)] == [b'["a"]', b'["b"]']
    assert s.read(6, 1 << 20) == [(12, b'["b"]')]


async def test_segments_roll_and_drained_ones_are_deleted(tmp_path):
    sink = MemorySink()
    spool = Spool(tmp_path, segment_bytes=1000)
    w = SpooledWriter(sink, spool, batch_bytes=1500)
    rec = Recorder(w, "a", "w")
    for i in range(20):
        rec.record(ex(i), usage=True, payload=None)
    assert len(spool.bases()) > 3
    await w.flush()
    assert ids(sink) == [f"r{i}" for i in range(20)]
    assert spool.bases() == [spool.bases()[-1]]     # only the segment being written is left


async def test_a_failing_table_keeps_its_rows_then_gives_up_and_counts_them(tmp_path):
    sink = MemorySink(fail=True)
    w = SpooledWriter(sink, Spool(tmp_path), give_up_s=3600)
    Recorder(w, "a", "w").record(ex(1), usage=True, payload=None)
    await w.flush()
    assert w.write_errors == 1 and w.done < w.spool.end and not w.dropped
    sink.fail = False
    await w.flush()                                  # back: written, nothing dropped
    assert ids(sink) == ["r1"] and not w.dropped
    sink.fail = True
    w.give_up_s = 0
    Recorder(w, "a", "w").record(ex(2), usage=True, payload=None)
    await w.flush()
    assert w.dropped == {USAGE_TABLE.name: 1} and w.done == w.spool.end


def test_a_full_journal_drops_and_counts(tmp_path):
    w = SpooledWriter(MemorySink(), Spool(tmp_path), max_rows=2)
    rec = Recorder(w, "a", "w")
    for i in range(5):
        rec.record(ex(i), usage=True, payload=None)
    assert w.dropped == {USAGE_TABLE.name: 3}
    assert os.path.getsize(tmp_path / f"{0:020d}.jsonl") == w.spool.end


def test_each_live_process_claims_a_journal_of_its_own_and_a_successor_takes_it_over(tmp_path):
    first, second = Spool.claim(tmp_path), Spool.claim(tmp_path)
    assert first.root != second.root and first.id != second.id
    ident = first.id
    first.close()                                   # its process ended
    again = Spool.claim(tmp_path)
    assert again.root == first.root and again.id == ident
    second.close()
    again.close()


async def test_a_journal_left_by_a_dead_process_beside_ours_is_drained_once(tmp_path):
    sink = MemorySink()
    first, second, held = Spool.claim(tmp_path), Spool.claim(tmp_path), Spool.claim(tmp_path)
    w1 = SpooledWriter(sink, first)
    Recorder(w1, "a", "w").record(ex(1), usage=True, payload=None)
    first.close()                         # its process died with r1 journaled only
    w2 = SpooledWriter(sink, second)
    # a live process's journal (with a row) is left alone
    Recorder(SpooledWriter(sink, held), "a", "w").record(ex(3), usage=True, payload=None)
    assert await w2.adopt_orphans() == 1
    assert ids(sink) == ["r1"]
    assert await w2.adopt_orphans() == 0  # drained: nothing again
    assert ids(sink) == ["r1"]
    held.close()
    second.close()
