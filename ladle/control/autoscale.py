"""Autoscaling: how many replicas a served entity should run, from the load it sees.

`decide()` is pure (like `planner.plan`): the entity's range in replicas, the load samples
of a window, the replicas running and starting, the current target and the time of its last
change come in; a target and a reason go out. `Autoscaler` keeps the per-group windows
between reconcile passes and calls it; the reconciler hands the targets to the planner.

The range follows the workload size's concurrency (Small 0-4, Medium 8-16, Large 16-64
concurrent requests; the lower bound is 0 with scale-to-zero, as on Databricks, so such an
entity runs one replica while it has any load) or `min/max_provisioned_concurrency`, divided by the concurrency one
replica serves; it never goes above the per-server cap (the cores, or a setting). An LLM's
`min/max_provisioned_throughput` (tokens/s) is divided by the tokens/s one replica of that
model generates on this machine (measured at its first READY: control/throughput.py; one
replica until then), and `provisioned_model_units` (provisioned-throughput endpoints) are
replicas: a model unit is one replica's measured throughput. Zero is
the planner's business: a scale-to-zero entity idle for `scale_to_zero_idle_s` goes to 0,
and its first request wakes it to one, from which it scales like any other.

Load = requests in flight on the replicas (including those queued inside a worker) plus
requests waiting for a replica. The rules (knobs in `Knobs`):
- up: the mean load over `up_window_s` divided by `target_in_flight` replicas, when above
  the target: at once (a burst is served by new replicas within seconds);
- down: the highest load over `down_window_s` divided by `target_in_flight`, when below the
  target, and only `cooldown_s` after the last change and with no replica still starting.
Up uses the mean and down the maximum of a longer window, so a load that hovers around a
threshold settles on the higher count instead of flapping.

Why 15 s down: a replica given back too early costs one scale-up when the load returns (a warm
spare serves within ~2 s, measured by `bench/autoscale.py`; requests queue on the others
meanwhile, none fail), so waiting ~7 scale-ups' time bounds that cost while a faded burst stops
holding its replicas after 15 s rather than 30 (replica-seconds of the bench's step load 0.67x
of a fixed maximum at 30 s).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable

from ladle.schemas.replicas import GroupObs, GroupState

# Concurrent requests per workload size (Databricks' ranges).
SIZE_RANGE = {"Small": (0, 4), "Medium": (8, 16), "Large": (16, 64)}


@dataclass(frozen=True)
class Knobs:
    target_in_flight: float = 3.0   # requests per replica the autoscaler aims for
    up_window_s: float = 2.0        # scale up on the mean load over this window
    down_window_s: float = 15.0     # scale down only when the load stayed low this long
    cooldown_s: float = 15.0        # and no sooner than this after the last change
    enabled: bool = True            # off: every entity runs its range's maximum (fixed)


@dataclass(frozen=True)
class ScaleRange:
    lo: int            # replicas, >= 1 (zero is the planner's scale-to-zero)
    hi: int
    concurrency: int   # requests one replica serves at once


def scale_range(ent: dict[str, Any], cap: int, per_replica: int = 4,
                tokens_per_s: float | None = None) -> ScaleRange:
    """The replicas a stored served entity may run: its concurrency range over `per_replica`
    (or its throughput range over `tokens_per_s`, the measured tokens/s of one replica), within
    [1, cap]."""
    cap = max(1, cap)
    if ent.get("provisioned_model_units"):
        n = max(1, min(cap, int(ent["provisioned_model_units"])))
        return ScaleRange(n, n, per_replica)
    if ent.get("max_provisioned_throughput"):
        if not tokens_per_s:   # not measured yet: one replica, which the measurement runs on
            return ScaleRange(1, 1, per_replica)
        hi = max(1, min(cap, math.ceil(int(ent["max_provisioned_throughput"]) / tokens_per_s)))
        lo = max(1, min(hi, math.ceil(int(ent.get("min_provisioned_throughput") or 0) / tokens_per_s)))
        return ScaleRange(lo, hi, per_replica)
    if ent.get("max_provisioned_concurrency"):
        lo_c = int(ent.get("min_provisioned_concurrency") or 0)
        hi_c = int(ent["max_provisioned_concurrency"])
    else:
        lo_c, hi_c = SIZE_RANGE.get(ent.get("workload_size") or "Small", (0, 4))
        if ent.get("scale_to_zero_enabled"):   # a size's lower bound is 0 with scale-to-zero
            lo_c = 0
    hi = max(1, min(cap, math.ceil(hi_c / per_replica)))
    lo = max(1, min(hi, math.ceil(lo_c / per_replica)))
    return ScaleRange(lo, hi, max(per_replica, math.ceil(hi_c / hi)))


@dataclass(frozen=True)
class Decision:
    target: int
    reason: str
    changed: bool


def _window(samples: Iterable[tuple[float, float]], now: float, span: float) -> list[float]:
    return [load for t, load in samples if now - t <= span]


def decide(rng: ScaleRange, samples: list[tuple[float, float]], running: int, starting: int,
           target: int, last_change: float, now: float, k: Knobs) -> Decision:
    """The target for one group. `samples` are (time, load) oldest first; `target` is the
    current one (0 when it has none yet)."""
    if target < rng.lo or target > rng.hi:   # a new group, or its range changed
        new = min(max(target, rng.lo), rng.hi)
        why = "below the range's minimum" if target < rng.lo else "above the range's maximum"
        return Decision(new, f"{why} ({rng.lo}-{rng.hi} replicas)", True)
    up = _window(samples, now, k.up_window_s)
    if up:
        mean = sum(up) / len(up)
        want = min(rng.hi, math.ceil(mean / k.target_in_flight))
        if want > target:
            return Decision(want, f"in-flight {mean / max(1, running):.1f} per replica over "
                                  f"{k.up_window_s:g} s (target {k.target_in_flight:g})", True)
    down = _window(samples, now, k.down_window_s)
    covered = bool(samples) and now - samples[0][0] >= k.down_window_s
    if (target > rng.lo and covered and starting == 0 and now - last_change >= k.cooldown_s):
        peak = max(down) if down else 0.0
        want = max(rng.lo, math.ceil(peak / k.target_in_flight))
        if want < target:
            return Decision(want, f"in-flight at most {peak / max(1, running):.1f} per replica over "
                                  f"{k.down_window_s:g} s (target {k.target_in_flight:g})", True)
    return Decision(target, "steady", False)


@dataclass
class _Window:
    samples: deque = field(default_factory=deque)
    target: int = 0
    last_change: float = float("-inf")


class Autoscaler:
    """The windows of every group between passes; `targets()` runs `decide` for each."""

    def __init__(self, knobs: Knobs, cap: int, per_replica: int = 4) -> None:
        self.knobs = knobs
        self.cap = cap
        self.per_replica = per_replica
        self._w: dict[str, _Window] = {}

    def targets(self, entities: dict[str, dict[str, Any]], observed: dict[str, GroupObs],
                now: float, tokens_per_s: dict[str, float] | None = None,
                ) -> tuple[dict[str, int], dict[str, tuple[int, int, str]]]:
        """({group key: target}, {group key: (old, new, reason)} for the changes made now).
        `entities` maps each running group's key to its stored served entity; `tokens_per_s`
        the measured throughput of one replica of the groups that have one."""
        out: dict[str, int] = {}
        changes: dict[str, tuple[int, int, str]] = {}
        keep = max(self.knobs.down_window_s, self.knobs.up_window_s)
        for key, ent in entities.items():
            rng = scale_range(ent, self.cap, self.per_replica, (tokens_per_s or {}).get(key))
            if not self.knobs.enabled:
                out[key] = rng.hi
                continue
            w = self._w.setdefault(key, _Window())
            obs = observed.get(key)
            if obs is not None and obs.target == 0:   # scaled to zero: woken at the floor
                w.samples.clear()
                w.target, w.last_change = 0, now
            if obs is not None:
                w.samples.append((now, float(obs.in_flight + obs.waiting)))
            while len(w.samples) > 1 and now - w.samples[1][0] >= keep:   # one sample spans it
                w.samples.popleft()
            running = obs.ready if obs is not None else 0
            starting = max(0, (obs.target if obs is not None else 0) - running) \
                if obs is not None and obs.state != GroupState.FAILED else 0
            d = decide(rng, list(w.samples), running, starting, w.target, w.last_change, now, self.knobs)
            if d.changed:
                if w.target:   # the first target of a group is no decision to report
                    changes[key] = (w.target, d.target, d.reason)
                w.target, w.last_change = d.target, now
            out[key] = w.target
        for gone in self._w.keys() - entities.keys():
            del self._w[gone]
        return out, changes
