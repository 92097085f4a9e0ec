"""Immediate sync on PostgreSQL: a write through one Store is heard by another server's
StateSync through LISTEN/NOTIFY, long before its poll interval; a listener whose
connection cannot be made leaves the poll working."""

from __future__ import annotations

import asyncio
import time

from ladle.control.store import Store
from ladle.control.sync import StateSync


async def _until(cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


def test_a_write_on_one_server_is_seen_by_another_at_once_not_at_the_next_poll(postgres):
    url = postgres.new_database()
    a, b = Store(url), Store(url)
    try:
        seen: list[int] = []

        def reload() -> None:
            seen.append(b.version())

        async def main() -> None:
            sync = StateSync(b, 3600.0, [reload])     # the poll alone would take an hour
            tasks = [asyncio.create_task(sync.run()), asyncio.create_task(sync.listen(b.listen_url()))]
            try:
                assert await _until(lambda: sync.notified >= 1 and sync.seen is not None, 10)
                before = sync.seen
                await asyncio.to_thread(a.add_group_row, "team", "carol", "user")
                target = await asyncio.to_thread(a.version)
                assert target > before
                t0 = time.monotonic()
                assert await _until(lambda: sync.seen == target, 5), "the write was not heard"
                heard_s = time.monotonic() - t0
                assert seen[-1] == target
                print(f"heard a write on another server after {heard_s * 1000:.1f} ms")
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run(main())
    finally:
        a.close()
        b.close()


def test_a_listener_that_cannot_connect_leaves_the_poll_working(postgres):
    url = postgres.new_database()
    store = Store(url)
    try:
        async def main() -> None:
            sync = StateSync(store, 0.05, [lambda: None])
            bad = "postgresql://nobody@127.0.0.1:1/none"   # nothing listens on port 1
            tasks = [asyncio.create_task(sync.run()), asyncio.create_task(sync.listen(bad, retry_s=0.05))]
            try:
                await asyncio.to_thread(store.add_group_row, "team", "dave", "user")
                target = await asyncio.to_thread(store.version)
                assert await _until(lambda: sync.seen == target, 5)
                assert sync.notified == 0
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run(main())
    finally:
        store.close()


def test_servers_starting_at_once_on_a_new_database_all_start(postgres):
    """Their schema creations would race (CREATE TABLE's catalog rows collide): one creates,
    the others wait for it."""
    import threading

    url = postgres.new_database()
    errors: list[BaseException] = []

    def start() -> None:
        try:
            Store(url).close()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
