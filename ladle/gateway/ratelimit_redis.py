"""`RedisLimiter`: the rate limiter of ladle.gateway.ratelimit, its counters kept in Redis so
that every gateway process sharing one Redis shares exact rate-limit counters.

Same semantics as `MemoryLimiter` (exact 60 s sliding windows, all needs checked and charged
at once or nothing charged, `math.inf` for a need that can never be met, events within
TICK_S merged). Each call is ONE Lua script, so check-and-charge over several buckets is
atomic across processes. Per bucket key K (under `prefix`):

- `<prefix>K:e`, a sorted set of events: score = time (s), member = "<seq>:<amount>";
- `<prefix>K:t`, a hash: `total` (sum of the amounts in the set) and `seq` (event ids).

The script prunes expired events (subtracting them from `total`), computes each wait the way
`_Window.wait` does (walking the oldest events until enough is freed), charges on admission
and sets a PEXPIRE of window + 1 s, so idle buckets vanish. Time is the Redis server's `TIME`
(one clock for every gateway) unless a `clock` is given (tests drive time with it). The
script's keys are not hash-tagged: it needs a single Redis (or one cluster slot).

`redis` (the `shared` extra) is imported only when a limiter is built.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ladle.gateway.ratelimit import TICK_S, Bucket, Need

if TYPE_CHECKING:
    import redis.asyncio

DEFAULT_PREFIX = "ladle:rl:"
INF_SENTINEL = "inf"

# KEYS: per bucket, its events (sorted set) then its counters (hash: total, seq).
# ARGV: now ("" = the server's TIME), tick, the window (s) of each bucket, then the needs
# (count; per need: cost, option count, then bucket index and limit per option), then the
# charges made on admission (count; bucket index and amount per charge).
# Returns {wait, index of the need that waits longest (0-based) or -1}; wait is a string
# ("0" when admitted, "inf" when a need can never be met).
_LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local INF = math.huge
local nb = #KEYS / 2
local pos = 2 + nb
local function nxt() pos = pos + 1; return tonumber(ARGV[pos]) end
local function num(x) return string.format('%.17g', x) end
local function amount_of(member) return tonumber(string.match(member, ':(-?%d+)$')) end

local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1e6
end
local tick = tonumber(ARGV[2])

local window, total = {}, {}
for b = 1, nb do
  local ev, w = KEYS[2 * b - 1], tonumber(ARGV[2 + b])
  local tot = tonumber(redis.call('HGET', KEYS[2 * b], 'total') or '0')
  -- expired events (t + w <= now) are the oldest: a prefix of the set
  local old = redis.call('ZRANGEBYSCORE', ev, '-inf', num(now - w + tick), 'WITHSCORES')
  local gone, freed = 0, 0
  for i = 1, #old, 2 do
    if tonumber(old[i + 1]) + w > now then break end
    gone, freed = gone + 1, freed + amount_of(old[i])
  end
  if gone > 0 then
    redis.call('ZREMRANGEBYRANK', ev, 0, gone - 1)
    tot = redis.call('HINCRBY', KEYS[2 * b], 'total', -freed)
  end
  window[b], total[b] = w, tot
end

-- seconds until total + need <= limit (as _Window.wait)
local function wait(b, limit, need)
  local excess = total[b] + need - limit
  if excess <= 0 then return 0 end
  if need > limit then return INF end
  local freed, start = 0, 0
  while true do
    local evs = redis.call('ZRANGE', KEYS[2 * b - 1], start, start + 127, 'WITHSCORES')
    if #evs == 0 then return INF end
    for i = 1, #evs, 2 do
      freed = freed + amount_of(evs[i])
      if freed >= excess then return math.max(0, tonumber(evs[i + 1]) + window[b] - now) end
    end
    start = start + 128
  end
end

local function add(b, amount)
  local ev, ctr = KEYS[2 * b - 1], KEYS[2 * b]
  local last = redis.call('ZRANGE', ev, -1, -1, 'WITHSCORES')
  local member
  if #last > 0 and now - tonumber(last[2]) < tick then
    redis.call('ZREM', ev, last[1])
    member = string.match(last[1], '^(%d+):') .. ':' .. string.format('%d', amount_of(last[1]) + amount)
  else
    member = redis.call('HINCRBY', ctr, 'seq', 1) .. ':' .. string.format('%d', amount)
  end
  redis.call('ZADD', ev, num(now), member)
  redis.call('HINCRBY', ctr, 'total', amount)
  local ttl = math.ceil(window[b] * 1000) + 1000
  redis.call('PEXPIRE', ev, ttl)
  redis.call('PEXPIRE', ctr, ttl)
end

local worst, worst_need = 0, -1
for n = 1, nxt() do
  local cost, best = nxt(), nil
  for _ = 1, nxt() do
    local b, limit = nxt(), nxt()
    local w = wait(b, limit, math.max(cost, 1))
    if best == nil or w < best then best = w end
  end
  if best ~= nil and best > worst then worst, worst_need = best, n - 1 end
end
if worst > 0 then
  if worst == INF then return {'inf', worst_need} end
  return {num(worst), worst_need}
end
for _ = 1, nxt() do
  local b = nxt()
  add(b, nxt())
end
return {'0', -1}
"""


class _Call:
    """The keys and arguments of one script call; buckets are numbered by key (1-based)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.index: dict[str, int] = {}
        self.keys: list[str] = []
        self.windows: list[float] = []

    def bucket(self, b: Bucket) -> int:
        i = self.index.get(b.key)
        if i is None:
            i = self.index[b.key] = len(self.index) + 1
            # The endpoint id (the key's first part) is a Redis Cluster hash tag: every bucket of
            # one request lies in one slot, which a multi-key script needs there.
            endpoint, _, rest = b.key.partition("/")
            tagged = f"{{{endpoint}}}/{rest}" if rest else b.key
            self.keys += [f"{self.prefix}{tagged}:e", f"{self.prefix}{tagged}:t"]
            self.windows.append(float(b.window_s))
        return i


class RedisLimiter:
    """Exact sliding windows in Redis, shared by every process using the same Redis and prefix."""

    def __init__(self, client: redis.asyncio.Redis, clock: Callable[[], float] | None = None,
                 prefix: str = DEFAULT_PREFIX) -> None:
        self.client, self.clock, self.prefix = client, clock, prefix
        self._script = client.register_script(_LUA)

    @classmethod
    def from_url(cls, url: str, clock: Callable[[], float] | None = None, prefix: str = DEFAULT_PREFIX,
                 max_connections: int = 64, timeout_s: float = 2.0) -> RedisLimiter:
        """A limiter with its own client. Its pool blocks when all `max_connections` are busy
        (redis-py's default pool raises past 100 concurrent calls); a script takes ~0.1 ms.
        A Redis that accepts connections but does not answer fails a call within `timeout_s`
        (the caller answers 503) instead of holding every limited request for seconds."""
        import redis.asyncio

        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s, timeout=timeout_s)
        return cls(redis.asyncio.Redis.from_pool(pool), clock=clock, prefix=prefix)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def acquire(self, needs: Sequence[Need]) -> tuple[float, Need | None]:
        if not needs:
            return 0.0, None
        call, args = _Call(self.prefix), [len(needs)]
        for need in needs:
            args += [need.cost, len(need.options)]
            for b in need.options:
                args += [call.bucket(b), b.limit]
        charges: dict[int, int] = {}
        for need in needs:
            if need.cost:
                for b in need.options:
                    charges.setdefault(call.bucket(b), need.cost)
        args += [len(charges), *(x for item in charges.items() for x in item)]
        wait, worst = await self._run(call, args)
        return (0.0, None) if wait <= 0 else (wait, needs[worst])

    async def charge(self, buckets: Sequence[Bucket], amount: int) -> None:
        if amount <= 0 or not buckets:
            return
        call = _Call(self.prefix)
        indexes = sorted({call.bucket(b) for b in buckets})
        await self._run(call, [0, len(indexes), *(x for i in indexes for x in (i, int(amount)))])

    async def _run(self, call: _Call, args: list[Any]) -> tuple[float, int]:
        now = "" if self.clock is None else repr(float(self.clock()))
        raw_wait, worst = await self._script(keys=call.keys, args=[now, TICK_S, *call.windows, *args])
        if isinstance(raw_wait, bytes):
            raw_wait = raw_wait.decode()
        return (math.inf if raw_wait == INF_SENTINEL else float(raw_wait)), int(worst)
