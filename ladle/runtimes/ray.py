"""Replicas as Ray Serve deployments: one Serve application per replica group.

The reconciler's `ensure(spec, target)` deploys an application named after the group key
(`app_name`) whose replicas are `ray_deployment.LadleReplica` actors, each running ladle's own
worker process; a new target only rescales it (no rolling restart), 0 included: scale to zero
keeps the application, so every server still finds it. `stop(key)` deletes the application.
`observe()` maps Serve's application and deployment status to GroupObs, refreshed by one poll.

`group(key)` also finds applications this backend did not deploy, so several ladle servers
(one of them owning the reconciler) serve from one Ray cluster. The servers share when an
entity was last used through Ray's internal KV: scale to zero counts every server's traffic,
and a request to a scaled-to-zero entity on any server wakes it.

`ray[serve]` is an optional extra: ray is imported only inside functions (ray_serve.py), and
every blocking Ray call runs on this backend's two threads, which live until `close()` (a
local cluster started by `ray.init` lives only as long as the thread that started it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Awaitable, Callable

from ladle.runtimes import ray_seal
from ladle.runtimes import ray_serve as rs
from ladle.runtimes.base import GroupObs, GroupSpec, Prepared, Preparer
from ladle.runtimes.ray_group import RayGroup
from ladle.runtimes import ray_log_relay as rl
from ladle.runtimes.ray_orphans import OrphanCollector
from ladle.runtimes.ray_replica import RayReplica
from ladle.runtimes.ray_serve import app_name
from ladle.schemas.replicas import GroupState

__all__ = ["RayBackend", "RayGroup", "RayReplica", "app_name"]

log = logging.getLogger("ladle.runtimes.ray")
MAX_ONGOING = 256     # requests a Serve replica is handed at once
ResolveEnv = Callable[[dict[str, str]], dict[str, str]]
FetchAccess = Callable[[str, str], Awaitable[str]]


class RayBackend:
    """ReplicaBackend on Ray Serve.

    prepare: ladle's Preparer (None on a server that only reaches groups others deployed).
        By default it runs in the ladle server and the replicas get the prepared paths
        (python, model dir): right on one machine, or with a filesystem shared by the nodes.
        With prepare_in_replica=True it must be picklable (ray_deployment.RegistryPreparer)
        and runs inside each Serve replica, on the node that runs the model; resolve_env then
        resolves `{{secrets/...}}` in environment_vars here, before deploying. resolve_env
        also feeds the entity's digest (a changed secret value rolls the application).
    fetch_access / registry_url: for replicas that fetch their model themselves: a coroutine
        minting a short-lived token that reads one model version (control/replica_tokens.py)
        and the registry URL the nodes reach; both go sealed to the cluster's KV for the
        application's replicas, renewed every `access_refresh_s` while this server owns it.
    address: a Ray cluster ("host:port", "ray://host:10001", "auto"); None connects to a
        local cluster if one runs, else starts one; "local" always starts one. A cluster the
        backend started stops on close(); one it connected to is only disconnected from. The
        applications stay on close(): other servers use them and the next owner adopts them.
    replica_cpus / actor_options: the Ray resources of each replica (e.g. {"num_gpus": 1}).
    direct: send to Serve replicas on this machine on their worker's socket (ray_group.py)
        rather than through the Serve handle.
    """

    def __init__(self, prepare: Preparer | None, logs_dir: Path | None, *, address: str | None = None,
                 prepare_in_replica: bool = False, resolve_env: ResolveEnv | None = None,
                 replica_cpus: float = 1.0, actor_options: dict | None = None,
                 start_timeout: float = 300.0, start_retries: int = 3,
                 max_ongoing_requests: int | None = None, health_check_period_s: float = 5.0,
                 poll_interval_s: float = 0.5, init_kwargs: dict | None = None, direct: bool = True,
                 orphan_grace_s: float = 10.0, fetch_access: FetchAccess | None = None,
                 registry_url: str | None = None, access_refresh_s: float = 1200.0,
                 notify: Callable[[], None] = lambda: None) -> None:
        if importlib.util.find_spec("ray") is None:
            raise RuntimeError("the Ray runtime needs Ray Serve: pip install 'ladle[ray]'")
        self.prepare = prepare
        self.logs_dir = logs_dir
        self.address = address
        self.prepare_in_replica = prepare_in_replica
        self.resolve_env = resolve_env
        self.replica_cpus = replica_cpus
        self.actor_options = dict(actor_options or {})
        self.start_timeout = start_timeout
        self.start_retries = start_retries
        self.max_ongoing_requests = max_ongoing_requests
        self.health_check_period_s = health_check_period_s
        self.poll_interval_s = poll_interval_s
        self.init_kwargs = dict(init_kwargs or {})
        self.direct = direct
        self.fetch_access = fetch_access
        self.registry_url = registry_url
        self.access_refresh_s = access_refresh_s
        self._access_at: dict[str, float] = {}     # app -> when its fetch token was written
        self._notify = notify
        self._groups: dict[str, RayGroup] = {}     # owned, by key
        self._found: dict[str, RayGroup] = {}      # deployed by another server, by key
        self._apps: dict[str, rs.AppView] = {}
        self._apps_at = float("-inf")
        self._used: dict[str, float] = {}          # app -> wall time, to write to the KV
        self._shared: dict[str, float] = {}        # app -> wall time, read from the KV
        self._owns_ray = False
        self._closed = False
        self._threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ladle-ray")
        self._connect: Future = self._threads.submit(self._connect_blocking)
        self._connect_tried = time.monotonic()
        self._poll_task: asyncio.Task | None = None
        self._poll_kick: asyncio.Event | None = None
        self._procs: dict[int, Any] = {}
        self._orphans = OrphanCollector(self, orphan_grace_s)

    # -- the seam ---------------------------------------------------------------------
    def set_notify(self, notify: Callable[[], None]) -> None:
        self._notify = notify

    def notify(self) -> None:
        self._notify()

    def ensure(self, spec: GroupSpec, target: int) -> None:
        self._start_poll()
        g = self._groups.get(spec.key)
        if g is None:
            found = self._found.pop(spec.key, None)
            g = RayGroup(self, spec.key, spec, target)
            if found is not None:  # this server now owns what it only reached before
                g.last_used = max(g.last_used, found.last_used)
            self._groups[spec.key] = g
            g.logs.reset_build()
            g.logs.build(f"Creating served entity '{spec.entity_name}' (model {spec.model_name} "
                         f"version {spec.model_version}) on Ray Serve as application '{g.app}'")
        else:
            g.set_target(target)

    async def stop(self, key: str) -> None:
        g = self._groups.get(key)
        if g is None:
            return
        await g.stop()
        try:
            await self.connected()
            await self.run_blocking(rs.delete, g.app)
            deadline = time.monotonic() + 60.0
            while g.app in self._apps and time.monotonic() < deadline:
                self.kick_poll()
                await asyncio.sleep(0.2)
        except Exception as e:
            log.warning("deleting Ray Serve application %s failed: %s", g.app, e)
        finally:
            if self._groups.get(key) is g:
                del self._groups[key]
                self._access_at.pop(g.app, None)
            self.notify()

    def observe(self) -> dict[str, GroupObs]:
        self._start_poll()
        return {k: g.observe() for k, g in self._groups.items()}

    def group(self, key: str) -> RayGroup | None:
        self._start_poll()
        g = self._groups.get(key) or self._found.get(key)
        if g is not None:
            return g
        view = self._apps.get(app_name(key))
        if view is None or view.status == "DELETING" or not self._connect.done():
            return None
        g = RayGroup(self, key, None, None)
        g.update(view, self._apps_at, self._shared.get(g.app))
        self._found[key] = g
        return g

    def collect_orphans(self, keep: set[str]) -> None:
        """Delete ladle's Serve applications that no endpoint serves (ray_orphans)."""
        self._orphans.collect(keep)

    def resource_usage(self, key: str) -> tuple[float, float]:
        """(cpu percent, resident MiB) of the group's Serve replicas on this machine (the
        actors and their workers); replicas on other nodes are not counted."""
        g = self._groups.get(key) or self._found.get(key)
        view = self._apps.get(g.app) if g else None
        if view is None:
            return 0.0, 0.0
        import psutil

        here = rs.local_ips()
        cpu = mem = 0.0
        for pid, ip, state in view.replicas:
            if pid is None or state != "RUNNING" or (ip and ip not in here):
                continue
            try:
                actor = self._procs.get(pid) or self._procs.setdefault(pid, psutil.Process(pid))
                for p in [actor, *actor.children(recursive=True)]:
                    p = self._procs.setdefault(p.pid, p)  # cpu_percent measures since the last call
                    cpu += p.cpu_percent(None)
                    mem += p.memory_info().rss / 2**20
            except psutil.Error:
                self._procs.pop(pid, None)
        return cpu, mem

    async def close(self) -> None:
        self._closed = True
        groups = [*self._groups.values(), *self._found.values()]
        await asyncio.gather(*(g.stop(drain_timeout=5.0, grace=0.0) for g in groups), return_exceptions=True)
        self._groups.clear()
        self._found.clear()
        if self._poll_task is not None:
            self._poll_task.cancel()
            try:
                await self._poll_task
            except (asyncio.CancelledError, Exception):
                pass
        try:
            await asyncio.wrap_future(self._threads.submit(self._disconnect_blocking))
        except Exception as e:
            log.warning("disconnecting from Ray failed: %s", e)
        self._threads.shutdown(wait=False)

    # -- for the groups ---------------------------------------------------------------
    def logs_for(self, spec: GroupSpec):
        from ladle.telemetry.logs import EntityLogs

        return EntityLogs(self.logs_dir, spec.endpoint_id, spec.entity_name) if self.logs_dir else rl.NoLogs()

    async def connected(self) -> None:
        """Connected to Ray with Serve running; a failed attempt is tried again after 5 s."""
        if (self._connect.done() and self._connect.exception() is not None
                and time.monotonic() - self._connect_tried > 5.0 and not self._closed):
            self._connect = self._threads.submit(self._connect_blocking)
            self._connect_tried = time.monotonic()
        await asyncio.wrap_future(self._connect)

    async def run_blocking(self, fn: Callable, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._threads, fn, *args)

    def kick_poll(self) -> None:
        if self._poll_kick is not None:
            self._poll_kick.set()

    def mark_used(self, app: str, now: bool = False) -> None:
        """Record a use for the shared KV (written by the next poll; `now` polls at once)."""
        self._used[app] = time.time()
        if now:
            self.kick_poll()

    def entity_digest(self, spec: GroupSpec) -> str:
        """What an application serves, as an HMAC digest: the served entity (model, version,
        kind, concurrency, environment variables with their secrets resolved) and this
        backend's replica settings; never paths, URLs or credentials, which differ between
        servers. A new reconciler owner adopts a running application with the same digest
        (no rebuild, no restart) and redeploys only the changed ones."""
        resolved = None
        if self.resolve_env is not None and spec.env_vars:
            resolved = self.resolve_env(dict(spec.env_vars))
        return ray_seal.digest(ray_seal.seal_key(), {
            "spec": {**dataclasses.asdict(spec), "env_vars": list(map(list, spec.env_vars))},
            "resolved_env": resolved, "mode": "on-node" if self.prepare_in_replica else "server",
            "preparer": type(self.prepare).__name__, "deployment": self._deployment_options(),
            "start_timeout_s": self.start_timeout,
        })

    def _deployment_options(self) -> dict:
        return {
            "ray_actor_options": {"num_cpus": self.replica_cpus, **self.actor_options},
            # the worker queues and batches what it is given (as with the local runtime):
            # a low cap makes Serve's router hold requests back with backoff instead
            "max_ongoing_requests": self.max_ongoing_requests or MAX_ONGOING,
            "max_constructor_retry_count": self.start_retries,
            "health_check_period_s": self.health_check_period_s,
        }

    def deploy_args(self, spec: GroupSpec, prepared: Prepared | None, digest: str | None = None) -> dict:
        """The deployment's options and constructor arguments, and the entity's digest (an
        owner adopts an application with the same digest instead of redeploying it)."""
        from ladle.runtimes.ray_deployment import ReplicaOptions

        env = None
        if self.prepare_in_replica and self.resolve_env is not None and spec.env_vars:
            env = self.resolve_env(dict(spec.env_vars))
        # resolved secrets never go to Serve in the clear: the environment (the prepared one,
        # which carries resolved environment_vars, and `env`) is sealed; Serve keeps the token
        secret = {"prepared": prepared.env if prepared else {}, "env": env or {}}
        key = ray_seal.seal_key()
        options = ReplicaOptions(start_timeout_s=self.start_timeout,
                                 logs_dir=str(self.logs_dir) if self.logs_dir else None,
                                 sealed_env=ray_seal.seal(secret, key))
        if prepared is not None:
            prepared = Prepared(prepared.python, prepared.model_dir, {})
        preparer = self.prepare if self.prepare_in_replica else None
        return {"deployment": self._deployment_options(), "init": (spec, prepared, preparer, options),
                "digest": digest or self.entity_digest(spec)}

    async def publish_access(self, spec: GroupSpec, app: str) -> None:
        """Write (or renew) the registry URL and a fresh fetch token for the application's
        replicas, when they fetch their model themselves."""
        if not (self.prepare_in_replica and self.fetch_access and self.registry_url):
            return
        token = await self.fetch_access(spec.model_name, spec.model_version)
        await self.run_blocking(rs.write_access, app, self.registry_url, token)
        self._access_at[app] = time.monotonic()

    async def _relay_builds(self) -> None:
        """Build lines replicas preparing on their nodes relayed: to the group's build log."""
        await rl.relay(self, "build lines", rs.read_build_lines, lambda g: g.logs.build)

    async def _relay_logs(self) -> None:
        """Their runtime log lines (ray_log_relay): to the group's server.log."""
        await rl.relay(self, "runtime logs", rl.read_log_lines, lambda g: g.logs.server_raw)

    async def _renew_access(self) -> None:
        for g in list(self._groups.values()):
            at = self._access_at.get(g.app)
            if at is not None and time.monotonic() - at > self.access_refresh_s and not self._closed:
                try:
                    await self.publish_access(g.spec, g.app)
                except Exception as e:   # tried again next poll; the old token lives on meanwhile
                    log.warning("renewing the fetch token of %s failed: %s", g.app, e)

    # -- connection and the poll ------------------------------------------------------
    def _connect_blocking(self) -> None:
        address = None if self.address in (None, "") else self.address
        if rs.connect(address, self.init_kwargs):
            self._owns_ray = True

    def _disconnect_blocking(self) -> None:
        if self._owns_ray:
            rs.disconnect()
            self._owns_ray = False

    def _start_poll(self) -> None:
        if self._poll_task is not None or self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._poll_kick = asyncio.Event()
        self._poll_task = loop.create_task(self._poll())

    async def _poll(self) -> None:
        while not self._closed:
            try:
                await self.connected()
                break
            except Exception as e:
                log.error("cannot connect to Ray at %s: %s", self.address or "local", e)
                await asyncio.sleep(5.0)
        while not self._closed:
            self._poll_kick.clear()
            used, self._used = self._used, {}
            watch = [g.app for g in self._groups.values()]
            started = time.monotonic()
            try:
                apps, shared = await self.run_blocking(rs.poll, used, watch)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("reading Ray Serve status failed: %s", e)
                for app, wall in used.items():  # written next time
                    self._used.setdefault(app, wall)
            else:
                self._apps, self._apps_at = apps, started
                self._shared.update(shared)
                for g in list(self._groups.values()):
                    g.update(apps.get(g.app), started, shared.get(g.app))
                for key, g in list(self._found.items()):
                    g.update(apps.get(g.app), started, None)
                    if g.state == GroupState.STOPPING:
                        self._found.pop(key, None)
                await self._renew_access()
                await self._relay_builds()
                await self._relay_logs()
            try:
                await asyncio.wait_for(self._poll_kick.wait(), self.poll_interval_s)
            except asyncio.TimeoutError:
                pass

