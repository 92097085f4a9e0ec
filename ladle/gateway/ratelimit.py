"""Rate limits: which limits apply to a caller (the policy), and the counters (the limiter).

Policy, as Databricks documents it for AI Gateway rate limits:
- `key: endpoint` limits apply to all traffic of the endpoint (a global maximum).
- A custom limit for the caller (`key: user` or `service_principal` with `principal` naming
  it) applies when there is one; otherwise, when the caller belongs to groups named by
  `key: user_group` limits, those apply (shared by all members of a group; the caller is
  refused only when every one of its groups refuses); otherwise the default per-user limits
  (`key: user` without `principal`, one counter per caller) apply.
- `calls` and `tokens` limits are both enforced: the stricter one wins. A limit of 0 blocks
  the caller outright (403, as observed on Databricks).
- The legacy endpoint `rate_limits` (`key: endpoint|user`, calls only) add to the list.

Counting is a sliding window of `renewal_period` (a minute): a request is admitted when the
calls admitted in the last 60 s are fewer than `calls`, so any 60 s span admits at most
`calls` (no burst of 2x at a window edge). Tokens are counted after the answer (prompt +
completion tokens from its `usage`); a caller is admitted while the tokens of the last 60 s
are below `tokens`. Retry-After is the exact time until the window admits the caller again,
rounded up to whole seconds.

The limiter is a seam: `MemoryLimiter` is exact within one server process (ladle's default);
a shared store (Redis sorted sets and a Lua script doing `acquire` atomically) implements
the same two calls for several workers.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

from ladle.schemas.errors import ApiError
from ladle.schemas.principal import Principal

WINDOW_S = 60.0          # renewal_period "minute", the only period the API accepts
TICK_S = 0.001           # events closer than this share one log entry (bounds memory)
INF = math.inf


@dataclass(frozen=True)
class Bucket:
    key: str
    limit: int
    window_s: float = WINDOW_S


@dataclass(frozen=True)
class Need:
    """Met when any one of `options` has room. On admission `cost` is charged to every
    option (calls: 1; tokens: 0 now, the real count after the answer)."""
    options: tuple[Bucket, ...]
    cost: int
    label: str


class RateLimiter(Protocol):
    async def acquire(self, needs: Sequence[Need]) -> tuple[float, Need | None]:
        """Admit when every need is met, charging the costs: returns (0.0, None). Otherwise
        charge nothing and return (seconds until all needs would be met, the need that
        waits longest); math.inf when a need can never be met."""
        ...

    async def charge(self, buckets: Sequence[Bucket], amount: int) -> None: ...


class _Window:
    __slots__ = ("events", "total", "window_s")

    def __init__(self, window_s: float) -> None:
        self.events: deque[list[float]] = deque()   # [time, amount], oldest first
        self.total = 0
        self.window_s = window_s

    def prune(self, now: float) -> None:
        ev = self.events
        while ev and ev[0][0] + self.window_s <= now:
            self.total -= int(ev.popleft()[1])

    def add(self, now: float, amount: int) -> None:
        ev = self.events
        if ev and now - ev[-1][0] < TICK_S:
            ev[-1][0] = now          # later, never earlier: the entry expires no sooner
            ev[-1][1] += amount
        else:
            ev.append([now, amount])
        self.total += amount

    def wait(self, now: float, limit: int, need: int) -> float:
        """Seconds until total + need <= limit."""
        excess = self.total + need - limit
        if excess <= 0:
            return 0.0
        if need > limit:
            return INF
        freed = 0
        for t, amount in self.events:
            freed += int(amount)
            if freed >= excess:
                return max(0.0, t + self.window_s - now)
        return INF


def acquire_all(needs: Sequence[Need], wait: Callable[[Bucket, int], float],
                add: Callable[[Bucket, int], None]) -> tuple[float, Need | None]:
    """The all-or-nothing rule of the limiters that count themselves: the longest wait of
    any need on its best option (`wait(bucket, cost)`); when none waits, each bucket of every
    need is charged once (`add(bucket, cost)`)."""
    worst, worst_need = 0.0, None
    for need in needs:
        best = min((wait(b, max(need.cost, 1)) for b in need.options), default=0.0)
        if best > worst:
            worst, worst_need = best, need
    if worst > 0:
        return worst, worst_need
    charged: set[str] = set()
    for need in needs:
        if need.cost:
            for b in need.options:
                if b.key not in charged:
                    charged.add(b.key)
                    add(b, need.cost)
    return 0.0, None


class MemoryLimiter:
    """Exact sliding windows in this process (asyncio: acquire runs without awaiting, so
    checking and charging several buckets is atomic)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, sweep_every: int = 4096) -> None:
        self.clock = clock
        self.windows: dict[str, _Window] = {}
        self.sweep_every = sweep_every
        self._ops = 0

    def _win(self, b: Bucket, now: float) -> _Window:
        w = self.windows.get(b.key)
        if w is None:
            w = self.windows[b.key] = _Window(b.window_s)
        w.prune(now)
        return w

    async def acquire(self, needs: Sequence[Need]) -> tuple[float, Need | None]:
        now = self.clock()
        self._maybe_sweep(now)
        return acquire_all(needs, lambda b, n: self._win(b, now).wait(now, b.limit, n),
                           lambda b, n: self._win(b, now).add(now, n))

    async def charge(self, buckets: Sequence[Bucket], amount: int) -> None:
        if amount <= 0:
            return
        now = self.clock()
        for key in {b.key: b for b in buckets}.values():
            self._win(key, now).add(now, amount)

    def _maybe_sweep(self, now: float) -> None:
        self._ops += 1
        if self._ops % self.sweep_every:
            return
        for key in [k for k, w in self.windows.items() if (w.prune(now), not w.events)[1]]:
            del self.windows[key]


# -- policy ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Limit:
    kind: str      # calls | tokens
    amount: int


@dataclass
class LimitPolicy:
    """The rate limits of one endpoint, compiled from its config."""
    endpoint_id: str
    endpoint: list[_Limit] = field(default_factory=list)
    default_user: list[_Limit] = field(default_factory=list)
    users: dict[str, list[_Limit]] = field(default_factory=dict)
    sps: dict[str, list[_Limit]] = field(default_factory=dict)
    groups: dict[str, list[_Limit]] = field(default_factory=dict)
    window_s: float = WINDOW_S
    empty: bool = True          # set by compile_limits (read on every request)
    has_tokens: bool = False

    def _settle(self) -> "LimitPolicy":
        every = [*self.endpoint, *self.default_user, *(x for d in (self.users, self.sps, self.groups)
                                                      for v in d.values() for x in v)]
        self.empty = not every
        self.has_tokens = any(lim.kind == "tokens" for lim in every)
        return self

    def _bucket(self, kind: str, subject: str, amount: int) -> Bucket:
        return Bucket(f"{self.endpoint_id}/{kind}/{subject}", amount, self.window_s)

    def needs(self, p: Principal) -> list[Need]:
        out = [Need((self._bucket(lim.kind, "endpoint", lim.amount),), _cost(lim),
                    f"{lim.amount} {lim.kind} per minute for the endpoint") for lim in self.endpoint]
        who = f"{'service principal' if p.kind == 'service_principal' else 'user'} '{p.name}'"
        custom = (self.sps if p.kind == "service_principal" else self.users).get(p.name)
        if custom is None and p.kind == "service_principal":
            custom = self.users.get(p.name)
        subject = f"principal:{p.name}"
        if custom is not None:
            out += [Need((self._bucket(lim.kind, subject, lim.amount),), _cost(lim),
                         f"{lim.amount} {lim.kind} per minute for {who}") for lim in custom]
            return out
        mine = sorted(g for g in self.groups if g in p.groups)
        if mine:
            for kind in ("calls", "tokens"):
                opts = tuple(self._bucket(kind, f"group:{g}", lim.amount)
                             for g in mine for lim in self.groups[g] if lim.kind == kind)
                if opts:
                    names = ", ".join(f"'{g}'" for g in mine)
                    out.append(Need(opts, 1 if kind == "calls" else 0,
                                    f"the {kind} per minute of group(s) {names}"))
            return out
        out += [Need((self._bucket(lim.kind, subject, lim.amount),), _cost(lim),
                     f"{lim.amount} {lim.kind} per minute per user") for lim in self.default_user]
        return out


def _cost(lim: _Limit) -> int:
    return 1 if lim.kind == "calls" else 0


def compile_limits(endpoint_id: str, ai_gateway: dict[str, Any] | None,
                   legacy: list[dict[str, Any]] | None, window_s: float = WINDOW_S) -> LimitPolicy:
    pol = LimitPolicy(endpoint_id, window_s=window_s)
    entries = list((ai_gateway or {}).get("rate_limits") or [])
    entries += [{"calls": r.get("calls"), "key": r.get("key") or "endpoint"} for r in legacy or []]
    for e in entries:
        limits = [_Limit(k, int(e[k])) for k in ("calls", "tokens") if e.get(k) is not None]
        key, principal = e.get("key") or "endpoint", e.get("principal")
        if key == "endpoint":
            pol.endpoint += limits
        elif key == "user" and not principal:
            pol.default_user += limits
        elif key == "user":
            pol.users.setdefault(principal, []).extend(limits)
        elif key == "service_principal":
            pol.sps.setdefault(principal, []).extend(limits)
        elif key == "user_group":
            pol.groups.setdefault(principal, []).extend(limits)
    return pol._settle()


def token_buckets(needs: Sequence[Need]) -> list[Bucket]:
    return [b for n in needs if n.cost == 0 for b in n.options]


async def admit(limiter: RateLimiter, pol: LimitPolicy, p: Principal, endpoint_name: str) -> list[Need]:
    """Raise 429 (or 403 for a limit of 0) unless the caller is admitted; return the needs
    (the token buckets among them are charged once the answer's usage is known)."""
    needs = pol.needs(p)
    if not needs:
        return needs
    try:
        wait, need = await limiter.acquire(needs)
    except Exception as e:   # a shared counter store (Redis) that cannot be reached
        raise ApiError("TEMPORARILY_UNAVAILABLE",
                       f"Rate limits of endpoint '{endpoint_name}' cannot be checked right now "
                       f"({type(e).__name__}); retry shortly.", 503) from None
    if wait <= 0:
        return needs
    what = need.label if need else "the rate limit"
    if wait == INF:
        raise RateLimited("PERMISSION_DENIED",
                          f"Requests to endpoint '{endpoint_name}' are blocked by a rate limit of "
                          f"0 ({what}).", 403)
    secs = max(1, math.ceil(wait - 1e-9))
    raise RateLimited("REQUEST_LIMIT_EXCEEDED",
                      f"Exceeded the rate limit of {what} on endpoint '{endpoint_name}'; "
                      f"retry after {secs} seconds. The endpoint's rate limits are its AI Gateway "
                      "config (`serving-endpoints put-ai-gateway` changes them).", 429,
                      headers={"Retry-After": str(secs)})


class RateLimited(ApiError):
    """A refusal by a rate limit (counted in request_rate_limited_count)."""
