"""`SharedLimiter`: the rate limiter of ladle.gateway.ratelimit with its counters in shared
memory, so the gateway processes of one server (gateway/workers.py) count in one set of
windows without asking the server per request. Several servers still need Redis
(ratelimit_redis.py).

Same semantics as `MemoryLimiter` (exact sliding windows, every need checked and charged at
once or nothing charged, `math.inf` for a need that can never be met, events within TICK_S
merged). The counters live in an anonymous shared file (memfd) that the server makes and
hands to each worker process as an inherited descriptor, so nothing is left on disk and only
the server's children can reach it. Each call takes a POSIX record lock (`fcntl.lockf`; the
kernel drops it if its holder dies) for the few microseconds it reads and writes the table,
and never awaits while holding it. Time is CLOCK_MONOTONIC, one clock for every process.

Layout, in 8-byte words (the file is sparse: pages appear as windows fill):

- a header: magic, slot count, ring capacity;
- `slots` slots of SLOT_WORDS words: the bucket key's 128-bit hash (two words; 0 = never
  used), the ring's head and length, the window's total, its length in seconds;
- per slot, a ring of `capacity` events (time in seconds, amount), oldest at the head.

A ring holds a window of 1 ms ticks (65536 > 60 s / TICK_S), so windows stay exact; a slot
whose window has emptied is reused by the next new key that probes past it. When every slot
holds a live window, a new key cannot be counted: `acquire` raises `LimiterFull` and the
request is answered 503 (as for an unreachable Redis).

Hand-written: no maintained library shares a sliding window between processes without a
server; the operations mirror `_Window` in ratelimit.py line for line.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import tempfile
import time
from typing import Callable, Sequence

from ladle.gateway.ratelimit import INF, TICK_S, Bucket, Need, acquire_all

MAGIC = 0x4C41444C454C494D          # "LADLELIM"
HEADER_WORDS = 8
SLOT_WORDS = 8
H0, H1, HEAD, COUNT, TOTAL, WINDOW = range(6)       # a slot's words
DEFAULT_SLOTS = 1024
DEFAULT_CAPACITY = 1 << 16


class LimiterFull(RuntimeError):
    """Every slot holds a live window: a new bucket cannot be counted."""


def _hash(key: str) -> tuple[int, int]:
    d = hashlib.blake2b(key.encode(), digest_size=16).digest()
    h0 = int.from_bytes(d[:8], "little", signed=True) or 1     # 0 marks a slot never used
    return h0, int.from_bytes(d[8:], "little", signed=True)


class SharedLimiter:
    def __init__(self, fd: int, clock: Callable[[], float] = time.monotonic) -> None:
        """Attach to the counters in `fd` (made by `create`); the limiter owns `fd` after."""
        self.fd, self.clock = fd, clock
        self._mm = mmap.mmap(fd, 0, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._q = memoryview(self._mm).cast("q")
        self._d = memoryview(self._mm).cast("d")
        if self._q[0] != MAGIC:
            raise ValueError("not a ladle rate-limit table")
        self.slots, self.capacity = self._q[1], self._q[2]
        self._rings = HEADER_WORDS + self.slots * SLOT_WORDS
        self._known: dict[str, tuple[int, int, int]] = {}   # key -> its hash, the slot last found

    @classmethod
    def create(cls, slots: int = DEFAULT_SLOTS, capacity: int = DEFAULT_CAPACITY,
               clock: Callable[[], float] = time.monotonic) -> "SharedLimiter":
        """A new, empty table in an anonymous shared file; a child process gets it through
        `pass_fds` (no other child inherits it)."""
        if hasattr(os, "memfd_create"):
            fd = os.memfd_create("ladle-rate-limits")       # close-on-exec: only pass_fds hand it on
        else:       # no memfd (macOS): an unlinked temporary file
            f = tempfile.TemporaryFile()
            fd = os.dup(f.fileno())
            f.close()
        words = HEADER_WORDS + slots * SLOT_WORDS + slots * capacity * 2
        os.ftruncate(fd, words * 8)
        with mmap.mmap(fd, HEADER_WORDS * 8, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as mm:
            q = memoryview(mm).cast("q")
            q[1], q[2], q[0] = slots, capacity, MAGIC
            q.release()
        return cls(fd, clock)

    # -- the table -----------------------------------------------------------------------
    def _slot(self, key: str, window_s: float, now: float) -> int:
        """The word offset of `key`'s slot (made, or an emptied one reused, when new)."""
        q = self._q
        known = self._known.get(key)
        if known is not None:
            h0, h1, hint = known
            if q[hint + H0] == h0 and q[hint + H1] == h1:     # not reused for another key since
                return hint
        else:
            h0, h1 = _hash(key)
        spare = -1
        start = (h0 & 0x7FFFFFFFFFFFFFFF) % self.slots
        for i in range(self.slots):
            at = HEADER_WORDS + ((start + i) % self.slots) * SLOT_WORDS
            got = q[at + H0]
            if got == h0 and q[at + H1] == h1:
                self._remember(key, h0, h1, at)
                return at
            if got == 0:
                break
            if spare < 0:
                self._prune(at, now)
                if q[at + COUNT] == 0:
                    spare = at
        else:
            if spare < 0:
                raise LimiterFull(f"all {self.slots} rate-limit slots hold a live window")
            at = -1
        if spare >= 0:
            at = spare
        q[at + HEAD] = q[at + COUNT] = q[at + TOTAL] = 0
        self._d[at + WINDOW] = window_s
        q[at + H1] = h1
        q[at + H0] = h0
        self._remember(key, h0, h1, at)
        return at

    def _remember(self, key: str, h0: int, h1: int, at: int) -> None:
        if len(self._known) > 4 * self.slots:
            self._known.clear()
        self._known[key] = (h0, h1, at)

    def _ring(self, at: int) -> int:
        return self._rings + ((at - HEADER_WORDS) // SLOT_WORDS) * self.capacity * 2

    def _win(self, b: Bucket, now: float) -> int:
        at = self._slot(b.key, b.window_s, now)
        self._d[at + WINDOW] = b.window_s
        self._prune(at, now)
        return at

    def _prune(self, at: int, now: float) -> None:
        q, d = self._q, self._d
        count = q[at + COUNT]
        if not count:
            return
        ring, cap, window = self._ring(at), self.capacity, d[at + WINDOW]
        head, total = q[at + HEAD], q[at + TOTAL]
        while count and d[ring + 2 * head] + window <= now:
            total -= q[ring + 2 * head + 1]
            head = (head + 1) % cap
            count -= 1
        q[at + HEAD], q[at + COUNT], q[at + TOTAL] = head, count, total

    def _add(self, at: int, now: float, amount: int) -> None:
        q, d = self._q, self._d
        ring, cap = self._ring(at), self.capacity
        head, count = q[at + HEAD], q[at + COUNT]
        last = ring + 2 * ((head + count - 1) % cap)
        # a full ring (a window over capacity ticks long) merges into its newest event:
        # counted whole, expiring no sooner
        if count and (now - d[last] < TICK_S or count == cap):
            d[last] = now
            q[last + 1] += amount
        else:
            new = ring + 2 * ((head + count) % cap)
            d[new] = now
            q[new + 1] = amount
            q[at + COUNT] = count + 1
        q[at + TOTAL] += amount

    def _wait(self, at: int, now: float, limit: int, need: int) -> float:
        q, d = self._q, self._d
        excess = q[at + TOTAL] + need - limit
        if excess <= 0:
            return 0.0
        if need > limit:
            return INF
        ring, cap, window = self._ring(at), self.capacity, d[at + WINDOW]
        head, freed = q[at + HEAD], 0
        for i in range(q[at + COUNT]):
            e = ring + 2 * ((head + i) % cap)
            freed += q[e + 1]
            if freed >= excess:
                return max(0.0, d[e] + window - now)
        return INF

    # -- the limiter ---------------------------------------------------------------------
    async def acquire(self, needs: Sequence[Need]) -> tuple[float, Need | None]:
        fcntl.lockf(self.fd, fcntl.LOCK_EX)
        try:
            now = self.clock()
            return acquire_all(needs, lambda b, n: self._wait(self._win(b, now), now, b.limit, n),
                               lambda b, n: self._add(self._win(b, now), now, n))
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN)

    async def charge(self, buckets: Sequence[Bucket], amount: int) -> None:
        if amount <= 0:
            return
        fcntl.lockf(self.fd, fcntl.LOCK_EX)
        try:
            now = self.clock()
            for b in {b.key: b for b in buckets}.values():
                self._add(self._win(b, now), now, amount)
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN)

    def live_slots(self) -> int:
        """Slots holding a window with events (for tests and the bench)."""
        q = self._q
        return sum(1 for i in range(self.slots)
                   if q[HEADER_WORDS + i * SLOT_WORDS + H0] and q[HEADER_WORDS + i * SLOT_WORDS + COUNT])

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        if self._mm.closed:
            return
        self._q.release()
        self._d.release()
        self._mm.close()
        os.close(self.fd)
