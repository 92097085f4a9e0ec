"""Entity logs: appends are queued for one writer thread (the caller never waits on the disk),
kept in order, and a read sees every line given before it."""

from __future__ import annotations

import threading

from ladle.telemetry.logs import EntityLogs


def test_lines_in_order_reset_and_read_your_writes(tmp_path):
    logs = EntityLogs(tmp_path, "ep", "m-1")
    for i in range(200):
        logs.build(f"step {i}")
    assert [line.split(" ", 1)[1] for line in logs.read_build().splitlines()] == [f"step {i}" for i in range(200)]
    logs.reset_build()
    logs.build("again")
    assert logs.read_build().endswith(" again\n") and len(logs.read_build().splitlines()) == 1
    logs.server("replica ready")
    assert logs.tail(5).endswith("[ladle] replica ready")


def test_appends_from_many_threads_all_arrive(tmp_path):
    logs = EntityLogs(tmp_path, "ep", "m-1")

    def write(k: int) -> None:
        for i in range(50):
            logs.server(f"t{k} {i}")
    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = logs.read_server().splitlines()
    assert len(lines) == 200
    for k in range(4):   # each thread's lines in its own order
        mine = [int(line.rsplit(" ", 1)[1]) for line in lines if f" t{k} " in line]
        assert mine == list(range(50))
