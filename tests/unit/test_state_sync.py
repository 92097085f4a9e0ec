"""StateSync: a version counts as seen only when every reload callback succeeded for it; a
failed one is retried next interval until it succeeds, and a newer version reloads all."""

from __future__ import annotations

import asyncio
import threading

from ladle.control.sync import StateSync


class FakeStore:
    def __init__(self) -> None:
        self.v = 1

    def version(self) -> int:
        return self.v

    async def call(self, fn, *args):
        return await asyncio.to_thread(fn, *args)


def test_a_failed_reload_is_retried_until_it_succeeds_then_the_version_is_seen():
    store = FakeStore()
    calls: list[str] = []
    fail = {"acl": 2}                    # the ACL reload fails twice (the database went away)
    loop_thread = []

    def tokens() -> None:
        assert threading.current_thread() is not loop_thread[0]   # blocking reads: off the loop
        calls.append("tokens")

    def acl() -> None:
        calls.append("acl")
        if fail["acl"]:
            fail["acl"] -= 1
            raise ConnectionError("database away")

    async def routes() -> None:
        calls.append("routes")

    async def main() -> None:
        loop_thread.append(threading.current_thread())
        sync = StateSync(store, 0.01, [tokens, acl, routes])
        await sync.step()                      # first look: everything reloads; acl fails
        assert calls == ["tokens", "acl", "routes"] and sync.seen is None
        calls.clear()
        await sync.step()                      # same version: only the failed one again
        assert calls == ["acl"] and sync.seen is None
        calls.clear()
        await sync.step()
        assert calls == ["acl"] and sync.seen == 1
        calls.clear()
        await sync.step()                      # nothing owed, nothing moved: no reloads
        assert calls == []
        store.v = 2
        fail["acl"] = 1
        await sync.step()                      # a new write: all reload
        assert calls == ["tokens", "acl", "routes"] and sync.seen == 1
        calls.clear()
        store.v = 3                            # another write before the retry: all again
        await sync.step()
        assert calls == ["tokens", "acl", "routes"] and sync.seen == 3

    asyncio.run(main())


def test_an_unreadable_version_changes_nothing():
    store = FakeStore()
    calls: list[str] = []

    def broken() -> int:
        raise ConnectionError("database away")

    async def main() -> None:
        sync = StateSync(store, 0.01, [lambda: calls.append("tokens")])
        store.version = broken                 # type: ignore[method-assign]
        await sync.step()
        assert calls == [] and sync.seen is None
        del store.version
        await sync.step()
        assert calls == ["tokens"] and sync.seen == 1

    asyncio.run(main())
