"""One replica group on Ray Serve (a Serve application) and what the gateway sees of it.

A group is owned (this server's reconciler ensures it: prepare, deploy, rescale) or found (a
server reaching an application another server deployed). Serve replicas on this machine are
also reached directly: each one's worker listens on a socket in `direct_socket_dir(key)`,
and requests go there (DirectReplica, ladle's own framed protocol) rather than through the
Serve handle, which costs a Ray actor call and its gRPC per request; replicas on other
machines, or none found yet, are reached through the handle. Its state comes from the backend's
poll of Serve's status (`update`). Ray Serve balances load itself; `replicas()` returns one
view per running Serve replica, so the pool's least-loaded choice spreads this server's
requests and its one retry after ReplicaGone goes through another view (Serve then picks a
live replica).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ladle.runtimes import ray_serve as rs
from ladle.runtimes.base import GroupObs, GroupSpec, InFlight, Prepared, wait_for_replicas
from ladle.runtimes.local_replica import AttachedReplica
from ladle.runtimes.ray_replica import DirectReplica, RayReplica, _pid_of
from ladle.runtimes.ray_deployment import direct_socket_dir
from ladle.schemas.replicas import GroupState
from ladle.support.retry import retrying

if TYPE_CHECKING:
    from ladle.runtimes.ray import RayBackend

log = logging.getLogger("ladle.runtimes.ray")


class RayGroup:
    def __init__(self, backend: "RayBackend", key: str, spec: GroupSpec | None, target: int | None) -> None:
        self.backend = backend
        self.key = key
        self.app = rs.app_name(key)
        self.spec = spec
        self.owned = spec is not None
        self.target = target or 0
        self.state = GroupState.BUILDING if self.owned else GroupState.STARTING
        self.message = "Building the model environment" if self.owned else "Found on Ray Serve"
        # a group created at zero replicas has not been used yet (scale-to-zero keeps it there)
        self.last_used = time.monotonic() if (target or not self.owned) else float("-inf")
        self.load = InFlight()      # this server's requests on the group
        self.waiting = 0            # requests waiting for a replica
        self.handle = None          # the application's DeploymentHandle
        self.stream_handle = None   # the same, streaming
        self._views: list[RayReplica] = []
        self._direct: dict[str, DirectReplica] = {}    # socket path -> connection
        self._running: set[int] = set()                # actor pids Serve reports RUNNING
        self._attaching: set[str] = set()
        self._ready = asyncio.Event()
        self._changed = asyncio.Event()
        self._stopping = False
        self._ever_ready = False
        # polls that began before our last deploy/scale returned are stale for this group
        self._deployed_at = float("inf") if self.owned else float("-inf")
        self._scaled_to: int | None = None  # None: (re)deploy
        self._missing = 0
        self._shared_used = 0.0
        self.relayed: dict[str, int] = {}   # relayed build lines copied, by replica key
        self.task: asyncio.Task | None = None
        if self.owned:
            self.logs = backend.logs_for(spec)
            self.task = asyncio.get_running_loop().create_task(self._run())
        else:
            self._set_handle()

    def _set_handle(self) -> None:
        self.handle = rs.make_handle(self.app)
        self.stream_handle = self.handle.options(stream=True)

    # -- used by the gateway ----------------------------------------------------------
    def replicas(self) -> list[RayReplica]:
        direct = [d for path, d in self._direct.items() if d.alive and _pid_of(path) in self._running]
        return direct or [v for v in self._views if v.alive]

    def _scan_direct(self) -> None:
        """Attach to the sockets of this group's Serve replicas on this machine."""
        for path in [p for p, d in self._direct.items() if not d.alive]:
            del self._direct[path]
        try:
            paths = [str(p) for p in direct_socket_dir(self.key).glob("*.sock")]
        except OSError:
            return
        for path in paths:
            if path not in self._direct and path not in self._attaching and _pid_of(path) in self._running:
                self._attaching.add(path)
                asyncio.get_running_loop().create_task(self._attach(path))

    async def _attach(self, path: str) -> None:
        client = AttachedReplica(Path(path))
        try:
            await client.attach(timeout=2.0)
        except ConnectionRefusedError:    # nobody listens: its replica is gone
            Path(path).unlink(missing_ok=True)
        except Exception as e:
            log.debug("cannot attach to %s: %s", path, e)
        else:
            if self._stopping:
                await client.close()
            else:
                self._direct[path] = DirectReplica(self, client)
                self._ready.set()
        finally:
            self._attaching.discard(path)

    async def _close_direct(self) -> None:
        direct, self._direct = self._direct, {}
        for d in direct.values():
            d.retired = True
            await d.client.close()

    def touch(self) -> None:
        self.last_used = time.monotonic()
        self.backend.mark_used(self.app)

    def wake(self) -> None:
        self.touch()
        if self.target == 0 or not self.replicas():
            self.backend.mark_used(self.app, now=True)  # the owner, on any server, sees it soon
            self.backend.notify()

    async def wait_ready(self, timeout: float) -> bool:
        self.waiting += 1   # demand the autoscaler counts (GroupObs.waiting)
        try:
            return await wait_for_replicas(
                self, self._ready, lambda: self.state == GroupState.FAILED or self._stopping, timeout)
        finally:
            self.waiting -= 1

    # -- used by the backend ----------------------------------------------------------
    def set_target(self, target: int) -> None:
        if target != self.target:
            self.target = target
            if target:
                self.last_used = time.monotonic()
            self._changed.set()

    @property
    def in_flight(self) -> int:
        return self.load.count

    def observe(self) -> GroupObs:
        return GroupObs(state=self.state, message=self.message, ready=len(self.replicas()),
                        target=self.target, in_flight=self.in_flight, last_used=self.last_used,
                        waiting=self.waiting, queued=self.waiting)

    def _set(self, state: GroupState, message: str) -> None:
        if (state, message) != (self.state, self.message):
            self.state, self.message = state, message
            if self.owned:
                self.backend.notify()

    def _resize(self, n: int) -> None:
        live = [v for v in self._views if not v.retired]
        while len(live) < n:
            live.append(RayReplica(self))
        while len(live) > n:
            victim = min(live, key=lambda v: v.in_flight)
            victim.retired = True
            live.remove(victim)
        self._views = live
        if live:
            self._ready.set()

    def update(self, view: rs.AppView | None, polled_at: float, shared_used: float | None) -> None:
        """Apply one poll of Serve's status and of the entity's last use by any server."""
        if shared_used and shared_used > self._shared_used:
            self._shared_used = shared_used
            self._on_shared_use(shared_used)
        if polled_at < self._deployed_at or self._stopping:
            return
        if view is None or view.status == "DELETING":
            self._missing += 1
            self._resize(0)
            if not self.owned:
                self._set(GroupState.STOPPING, "The Ray Serve application was deleted")
            elif self._missing >= 4 and self._scaled_to is not None:
                self._set(GroupState.RECOVERING, "The Ray Serve application is gone; deploying it again")
                self._scaled_to = None
                self._changed.set()
            return
        self._missing = 0
        if not self.owned:
            self.target = view.target
        self._resize(view.running)
        self._running = {pid for pid, _, state in view.replicas if state == "RUNNING" and pid}
        if self.backend.direct and view.running:
            self._scan_direct()
        if view.status == "DEPLOY_FAILED" or view.deployment_status == "DEPLOY_FAILED":
            self._set(GroupState.RECOVERING if self._ever_ready else GroupState.FAILED, rs.failure_reason(view))
        elif view.running:
            self._ever_ready = True
            self._set(GroupState.READY, f"{view.running} replica(s) ready (Ray Serve)")
        elif self.target == 0:
            self._set(GroupState.SCALED_TO_ZERO, "Scaled to zero; the next request starts a replica")
        elif view.status == "UNHEALTHY" or view.deployment_status == "UNHEALTHY":
            self._set(GroupState.RECOVERING, view.deployment_message or view.message or "Unhealthy")
        else:
            self._set(GroupState.RECOVERING if self._ever_ready else GroupState.STARTING,
                      "Starting replicas on Ray Serve")

    def _on_shared_use(self, wall: float) -> None:
        """Some server used the entity at wall-clock time `wall`."""
        mono = time.monotonic() - max(0.0, time.time() - wall)
        if mono > self.last_used:
            self.last_used = mono
            if self.owned and (self.target == 0 or not self.replicas()):
                self.backend.notify()  # the reconciler may scale it up again

    async def _run(self) -> None:
        spec, b = self.spec, self.backend
        try:
            await b.connected()
        except Exception as e:
            self._set(GroupState.FAILED, f"Cannot connect to Ray: {e}")
            return
        if b.prepare is None:
            self._set(GroupState.FAILED, "This ladle server has no preparer for Ray Serve replicas")
            return
        args: dict | None = None
        if b.prepare_in_replica and b.fetch_access is not None:
            try:
                await b.publish_access(spec, self.app)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.logs.build(f"ERROR: cannot give the replicas access to the registry: {e}")
                self._set(GroupState.FAILED, f"Build failed: {e}")
                return
            self.logs.build(f"Replicas fetch model '{spec.model_name}' version {spec.model_version} from "
                            f"the registry at {b.registry_url} themselves, with a short-lived token that "
                            "reads that version only")
        try:
            digest = await b.run_blocking(b.entity_digest, spec)
            target = self.target
            adopted = await b.run_blocking(rs.adopt, self.app, digest, target)
        except Exception as e:   # e.g. a secret that cannot be resolved: the build says why
            log.warning("checking Ray Serve application %s for adoption failed: %s", self.app, e)
            digest, adopted = None, False
        if adopted:
            self.logs.build(f"Ray Serve application '{self.app}' adopted with {target} replica(s): it "
                            f"already serves this entity (digest {digest}); nothing rebuilt or restarted")
            self._scaled_to = target
            self._deployed_at = time.monotonic()
            self._set(GroupState.STARTING, "Adopted the running application on Ray Serve")
            b.kick_poll()
        while not self._stopping:
            self._changed.clear()
            if self._scaled_to is None and args is None:   # not adopted, or gone since: deploy
                args = await self._build(digest)
                if args is None:
                    return
            try:
                # Once deployed (or ever ready), a failed deploy or scale is tried again with
                # back-off until it succeeds, the group stops or its target changes.
                await retrying(lambda e: self._ever_ready or self._scaled_to is not None,
                               delay=0.5, max_delay=30.0,
                               give_up=lambda: self._stopping or self._changed.is_set(),
                               before_sleep=self._deploy_failed)(self._apply_target, args)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self._deploy_failed(e, 0.0)
                if not self._ever_ready and self._scaled_to is None:
                    self._deployed_at = float("-inf")
                    self._set(GroupState.FAILED, f"Ray Serve deploy failed: {e}")
                    return
                continue
            if self.handle is None:
                self._set_handle()
            await self._changed.wait()

    async def _build(self, digest: str | None) -> dict | None:
        """Prepare the entity (here, or on the replicas' nodes) and return the deployment's
        arguments; None when the build failed (the group is FAILED)."""
        spec, b = self.spec, self.backend
        prepared: Prepared | None = None
        if not b.prepare_in_replica:
            self._set(GroupState.BUILDING, "Building the model environment")
            try:
                prepared = await b.prepare(spec, self.logs.build)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.logs.build(f"ERROR: {e}")
                self._set(GroupState.FAILED, f"Build failed: {e}")
                return None
            self.logs.build("Build finished; deploying to Ray Serve")
            self._set(GroupState.STARTING, "Starting replicas on Ray Serve")
        else:
            self.logs.build("Deploying to Ray Serve; the replicas prepare the model on their nodes")
            self._set(GroupState.STARTING, "Preparing and starting replicas on Ray Serve")
        try:
            return await self.backend.run_blocking(b.deploy_args, spec, prepared, digest)
        except Exception as e:
            self.logs.build(f"ERROR: {e}")
            self._set(GroupState.FAILED, f"Build failed: {e}")
            return None

    async def _apply_target(self, args: dict) -> None:
        b, target = self.backend, self.target
        if self._scaled_to is None:
            how = await b.run_blocking(rs.deploy, self.app, self.key, target, args)
            self.logs.build(f"Ray Serve application '{self.app}' {how} with {target} replica(s)")
        elif self._scaled_to != target:
            await b.run_blocking(rs.scale, self.app, target)
            self.logs.server(f"scaled to {target} replica(s) on Ray Serve")
        self._scaled_to = target
        self._deployed_at = time.monotonic()
        b.kick_poll()

    def _deploy_failed(self, e: BaseException, wait_s: float) -> None:
        log.warning("Ray Serve deploy of %s failed: %s", self.app, e)
        self.logs.server(f"Ray Serve deploy failed: {e}" + (f"; trying again in {wait_s:.1f} s" if wait_s else ""))

    async def stop(self, drain_timeout: float = 30.0, grace: float = 1.0) -> None:
        """Stop managing the group (the backend deletes the application): requests that picked
        it just before get `grace` to arrive, and this server's requests on it drain."""
        self._stopping = True
        self.state, self.message = GroupState.STOPPING, "Stopping"
        if self.task is not None:
            self.task.cancel()
        await asyncio.sleep(grace)
        await self.load.drained(drain_timeout)
        self._resize(0)
        await self._close_direct()
