"""The reconciler: the one owner of every state change after a handler records a spec.

Loop: read the stored endpoints and the runtime's observations, `plan()` (pure), carry
out the actions, publish the routing view to the gateway. Woken by handlers, by the
runtime when a group changes, and by a periodic tick (scale-to-zero needs the clock).

Servers sharing one database run one reconciler between them: each pass starts by taking
or renewing the `reconciler` lease (control/store.py); a server without it only serves.
A lease that is not renewed (its server died) passes to another server after `lease_s`.

Every store call and log append runs off the event loop (`Store.call`, a thread), so a slow
or silent database delays reconciling, never the requests the gateway serves.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from typing import Callable

from ladle.control.autoscale import Autoscaler, Knobs
from ladle.control.planner import Ensure, Fail, PlanInput, Promote, SetState, Stop, plan
from ladle.control.states import ConfigUpdate, check_config_update
from ladle.control.store import EndpointRecord, StaleRecord, Store
from ladle.control.throughput import Calibrator, measured, needs_throughput
from ladle.runtimes.base import ReplicaBackend
from ladle.schemas.routing import EndpointRoute, build_route
from ladle.telemetry.logs import EntityLogs
from ladle.telemetry.metrics import MetricsHub

log = logging.getLogger("ladle.reconciler")
QUEUE_POLL_S = 0.1   # how often the replica groups' queues are looked at (in memory)
Publish = Callable[[dict[str, EndpointRoute], frozenset[str]], None]


def group_keys(recs: list[EndpointRecord]) -> set[str]:
    """Every group key the stored endpoints' configs use (active and pending, not failed)."""
    return {ent["_key"] for rec in recs for cfg in (rec.active, rec.pending)
            if cfg is not None and not cfg.get("failed")
            for ent in cfg.get("served_entities", []) if ent.get("_key")}


class Reconciler:
    def __init__(self, store: Store, backend: ReplicaBackend, publish: Publish, logs_dir,
                 idle_s: float, interval_s: float, clock: Callable[[], float] = time.monotonic,
                 cpu_count: int | None = None, lease_s: float = 10.0, knobs: Knobs | None = None,
                 metrics: MetricsHub | None = None) -> None:
        self.store = store
        self.backend = backend
        self.publish = publish
        self.logs_dir = logs_dir
        self.idle_s = idle_s
        self.interval_s = interval_s
        self.clock = clock
        self.cpu_count = cpu_count or os.cpu_count() or 1
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._queues: asyncio.Task | None = None
        self._stops: set[asyncio.Task] = set()
        self.holder = uuid.uuid4().hex
        self.lease_s = max(lease_s, 3 * interval_s)
        self.leading = False
        self._renewed = float("-inf")
        self.autoscaler = Autoscaler(knobs or Knobs(), self.cpu_count)
        self.metrics = metrics
        self._where: dict[str, tuple[EndpointRecord, dict]] = {}
        self._notes: dict[str, str] = {}   # group key -> its scaling, until the replicas get there
        self._noted: dict[str, int] = {}
        self.calibrator = Calibrator(store, backend, self.kick)

    def _lead(self) -> bool:
        """Take or renew the lease; True while this server runs the reconciler."""
        now = time.monotonic()
        if self.leading and now - self._renewed < self.lease_s / 3:
            return True
        try:
            held = self.store.hold_lease("reconciler", self.holder, int(self.lease_s * 1000))
        except Exception:   # the database is away: act on nothing until the lease is renewed
            self.leading = False
            raise
        if held:
            self._renewed = now
        if held != self.leading:
            log.info("this server %s the reconciler", "now runs" if held else "no longer runs")
            self.leading = held
        return held

    def kick(self) -> None:
        self._wake.set()

    async def _watch_queues(self) -> None:
        """A queue forming at a group (requests waiting for a replica, or beyond a replica's
        concurrency) starts a pass at once instead of at the next interval, so a burst's first
        load sample reaches the autoscaler within QUEUE_POLL_S. Only the queue's start wakes:
        a group that stays queued (at its maximum) costs no extra passes. In memory only."""
        queued: set[str] = set()
        while True:
            await asyncio.sleep(QUEUE_POLL_S)
            try:
                now = {k for k, o in self.backend.observe().items() if o.queued or o.waiting}
            except Exception:   # noqa: BLE001 - the pass itself reports a backend that fails
                continue
            if self.leading and now - queued:
                self._wake.set()
            queued = now

    async def start(self) -> None:
        # Every server observes from the start, leader or not: a backend that polls a shared
        # cluster (Ray) then knows its groups before this server's first request.
        self.backend.observe()
        await self.republish()
        self._task = asyncio.get_running_loop().create_task(self._loop())
        if self.autoscaler.knobs.enabled:
            self._queues = asyncio.get_running_loop().create_task(self._watch_queues())

    async def stop(self) -> None:
        await self.calibrator.close()
        for task in (self._queues, self._task):
            if task is None:
                continue
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        if self.leading:   # hand over at once rather than after the lease runs out
            self.leading = False
            try:
                await self.store.call(self.store.release_lease, "reconciler", self.holder)
            except Exception:   # the database is away: the lease lapses by itself
                log.warning("could not release the reconciler lease", exc_info=True)

    async def _loop(self) -> None:
        while True:
            try:
                if await self.store.call(self._lead):
                    await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reconcile pass failed")
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()

    async def tick(self) -> None:
        for _ in range(5):  # settle: promotions free old groups in the same pass
            recs = await self.store.call(self.store.list_endpoints)
            observed = self.backend.observe()
            targets = self._autoscale(recs, observed)
            actions = plan(recs, observed, PlanInput(self.clock(), self.idle_s, self.cpu_count, targets,
                                                     self._notes))
            collect = getattr(self.backend, "collect_orphans", None)
            if collect is not None:   # a shared runtime (Ray): groups of endpoints deleted meanwhile
                collect(group_keys(recs))
            self._gauges(observed, actions)
            if not actions:
                return
            changed = await self._apply(recs, actions)
            if changed:
                await self.republish()
            if not any(isinstance(a, (Promote, Fail)) for a in actions):
                return

    def _autoscale(self, recs: list[EndpointRecord], observed: dict) -> dict[str, int]:
        """The autoscaler's targets; each change is logged with its reason (the server log
        and the entity's logs)."""
        where: dict[str, tuple[EndpointRecord, dict]] = {}
        for rec in recs:   # a group both configs share takes the range of the newer one
            for cfg in (rec.pending, rec.active):
                for ent in (cfg or {}).get("served_entities", []) if cfg and not cfg.get("failed") else []:
                    if not ent.get("external_model"):
                        where.setdefault(ent["_key"], (rec, ent))
        tps = {k: measured(rec.meta, e) for k, (rec, e) in where.items() if needs_throughput(e)}
        self.calibrator.check(where, observed)
        targets, changes = self.autoscaler.targets({k: e for k, (_, e) in where.items()}, observed,
                                                   self.clock(), {k: v for k, v in tps.items() if v})
        for key, (old, new, reason) in changes.items():
            rec, ent = where[key]
            note = f"scaling {'up' if new > old else 'down'}: {old} -> {new} replicas ({reason})"
            self._notes[key], self._noted[key] = note, new
            line = f"autoscale: {note}"
            log.info("%s/%s %s", rec.name, ent["name"], line)
            EntityLogs(self.logs_dir, rec.id, ent["name"]).server(line)
        self._where = where
        for key in list(self._notes):
            obs = observed.get(key)
            if key not in where or (key not in changes and obs is not None and obs.ready == self._noted[key]):
                del self._notes[key], self._noted[key]
        return targets

    def _gauges(self, observed: dict, actions: list) -> None:
        """The gauges behind `/metrics` for every group: replicas, the target this pass set
        (or kept), in-flight and queued requests."""
        if self.metrics is None:
            return
        set_now = {a.spec.key: a.target for a in actions if isinstance(a, Ensure)}
        for key, (rec, ent) in self._where.items():
            obs = observed.get(key)
            target = set_now.get(key, obs.target if obs else 0)
            self.metrics.for_endpoint(rec.id).scale(
                ent["name"], obs.ready if obs else 0, target, obs.in_flight if obs else 0,
                obs.queued if obs else 0)

    async def _apply(self, recs: list[EndpointRecord], actions: list) -> bool:
        by_id = {r.id: r for r in recs}
        dirty: set[str] = set()
        routes_changed = False
        for a in actions:
            if isinstance(a, Ensure):
                self.backend.ensure(a.spec, a.target)
            elif isinstance(a, Stop):
                t = asyncio.get_running_loop().create_task(self.backend.stop(a.key))
                self._stops.add(t)
                t.add_done_callback(self._stops.discard)
            elif isinstance(a, SetState):
                rec = by_id[a.endpoint_id]
                cfg = rec.active if a.which == "active" else rec.pending
                for ent in (cfg or {}).get("served_entities", []):
                    if ent["name"] == a.entity_name:
                        ent["state"] = {"deployment": a.deployment, "deployment_state_message": a.message}
                dirty.add(rec.id)
            elif isinstance(a, Promote):
                rec = by_id[a.endpoint_id]
                rec.config_update = check_config_update(
                    ConfigUpdate(rec.config_update), ConfigUpdate.NOT_UPDATING).value
                rec.active, rec.pending = rec.pending, None
                rec.active.pop("start_time", None)
                rec.updated_ms = int(time.time() * 1000)
                await self._log_all(rec, f"Config version {rec.active['config_version']} is now serving")
                dirty.add(rec.id)
                routes_changed = True
            elif isinstance(a, Fail):
                rec = by_id[a.endpoint_id]
                rec.config_update = check_config_update(
                    ConfigUpdate(rec.config_update), ConfigUpdate.UPDATE_FAILED).value
                failed = rec.pending
                failed.pop("start_time", None)
                rec.pending = None
                if rec.active is None:
                    failed["failed"] = True
                    rec.active = failed
                await self._log_all(rec, f"Update failed: {a.reason}", failed)
                rec.updated_ms = int(time.time() * 1000)
                dirty.add(rec.id)
                for key in a.keys:
                    await self.backend.stop(key)
                routes_changed = True
        if routes_changed:
            # the new routes before the new state is stored: a client that sees the endpoint
            # READY (and not updating) and queries it at once finds it routed (`tick` publishes
            # again from the store after the save)
            self._publish(recs)
        for eid in dirty:
            try:
                await self.store.call(self.store.save_endpoint, by_id[eid])
            except StaleRecord:   # a handler saved it meanwhile: plan again from what is stored
                self.kick()
        return routes_changed

    async def _log_all(self, rec: EndpointRecord, line: str, cfg: dict | None = None) -> None:
        def append() -> None:
            for ent in (cfg or rec.active or {}).get("served_entities", []):
                EntityLogs(self.logs_dir, rec.id, ent["name"]).build(line)
        await asyncio.to_thread(append)

    async def changed(self) -> None:
        """A handler or a sync changed what the store holds: publish the routes now, plan soon."""
        await self.republish()
        self.kick()

    async def republish(self) -> None:
        """Routes are published here, from the stored endpoints (the routes of those that serve,
        and the names of the others: they exist, nothing serves them yet), and by `_apply` from
        the records it is about to store. The gateway answers from these, never the store."""
        self._publish(await self.store.call(self.store.list_endpoints))

    def _publish(self, recs: list[EndpointRecord]) -> None:
        routes = {}
        for r in recs:
            if r.active is not None and not r.active.get("failed"):
                routes[r.name] = build_route(r.name, r.id, r.active, r.meta.get("ai_gateway"),
                                             r.meta.get("task"), r.meta.get("rate_limits"),
                                             r.meta.get("telemetry_config"))
        self.publish(routes, {r.name: (r.id, tuple(e["name"] for e in (r.pending or r.active or {})
                                                  .get("served_entities", [])))
                              for r in recs if r.name not in routes})
