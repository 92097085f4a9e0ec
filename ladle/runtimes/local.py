"""Replicas as local worker processes: one supervisor task per replica group.

A group builds once (the injected preparer resolves the model and its environment),
then keeps `target` replicas running: it restarts crashed ones with backoff, scales
to the target the reconciler sets (0 for scale-to-zero), and drains before stopping.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Callable

import psutil

from ladle.runtimes.base import (
    GroupObs, GroupSpec, Prepared, Preparer, drain_all, last_error_line, wait_for_replicas,
)
from ladle.runtimes.local_replica import LocalReplica
from ladle.runtimes.sandbox import Sandbox
from ladle.runtimes.template import Prestarted, Template
from ladle.runtimes.warm_pool import WarmPool
from ladle.runtimes.worker_launch import Launcher
from ladle.schemas.replicas import GroupState
from ladle.support.retry import retrying
from ladle.telemetry.logs import EntityLogs


class LocalGroup:
    def __init__(self, spec: GroupSpec, target: int, backend: "LocalBackend") -> None:
        self.spec = spec
        self.target = target
        self.backend = backend
        self.state = GroupState.BUILDING
        self.message = "Building the model environment"
        # a group created at zero replicas has not been used yet (scale-to-zero keeps it there)
        self.last_used = time.monotonic() if target else float("-inf")
        self._replicas: list[LocalReplica] = []
        self._changed = asyncio.Event()
        self._ready = asyncio.Event()
        self._stopping = False
        self._seq = 0
        self._ever_ready = False
        self.waiting = 0   # requests waiting for a replica (cold start, every replica starting)
        self.logs = backend.logs_for(spec)
        self.task = asyncio.get_running_loop().create_task(self._run())

    # -- used by the gateway ----------------------------------------------------------
    def replicas(self) -> list[LocalReplica]:
        return [r for r in self._replicas if r.alive]

    def touch(self) -> None:
        self.last_used = time.monotonic()

    def wake(self) -> None:
        self.last_used = time.monotonic()
        if self.target == 0 or not self.replicas():
            self.backend.on_wake(self.spec.key)

    async def wait_ready(self, timeout: float) -> bool:
        self.waiting += 1
        try:
            return await wait_for_replicas(
                self, self._ready, lambda: self.state == GroupState.FAILED or self._stopping, timeout)
        finally:
            self.waiting -= 1

    # -- used by the backend ----------------------------------------------------------
    def set_target(self, target: int) -> None:
        if target != self.target:
            self.target = target
            self._changed.set()

    def observe(self) -> GroupObs:
        return GroupObs(
            state=self.state, message=self.message, ready=len(self.replicas()), target=self.target,
            in_flight=sum(r.in_flight for r in self._replicas), last_used=self.last_used,
            waiting=self.waiting,
            queued=self.waiting + sum(max(0, r.in_flight - r.concurrency) for r in self._replicas),
        )

    async def stop(self, drain_timeout: float = 30.0, grace: float = 1.0) -> None:
        self._stopping = True
        self.state = GroupState.STOPPING
        # Requests that picked this group from the routing view just before it was swapped
        # out may not have reached a replica yet: give them a moment before draining.
        await asyncio.sleep(grace)
        await drain_all([r.load for r in self._replicas], drain_timeout)
        self.task.cancel()
        await asyncio.gather(*(r.kill() for r in self._replicas), return_exceptions=True)
        self._replicas.clear()

    def _set(self, state: GroupState, message: str) -> None:
        if (state, message) != (self.state, self.message):
            self.state, self.message = state, message
            self.backend.notify()

    async def _run(self) -> None:
        template = self.backend.launcher.template
        if template is not None and self.target > 0 and self.spec.kind == "mlflow_pyfunc":
            # most MLflow models reuse the server's environment: its imports overlap the build
            asyncio.get_running_loop().create_task(template.ensure())
        try:
            prepared = await self.backend.prepare(self.spec, self.logs.build)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the build failed: the reason is in build-logs
            self.logs.build(f"ERROR: {e}")
            self._set(GroupState.FAILED, f"Build failed: {e}")
            return
        self.logs.build("Build finished; starting replicas")
        if self.target > 0 or not self.backend.launcher.forks(prepared.python, prepared.env):
            # the template is not started for a group created at zero (a built-in endpoint
            # nobody called yet): an idle server holds none; once started it stays
            await self.backend.warm.fill(prepared.python, prepared.env)
        while not self._stopping:
            # Cleared before the target is read: a set_target() during the awaits below
            # leaves it set, so the loop looks again instead of sleeping on a stale target.
            self._changed.clear()
            self._replicas = [r for r in self._replicas if r.alive]
            if len(self._replicas) < self.target:
                if not self._replicas:
                    self._set(GroupState.RECOVERING if self._ever_ready else GroupState.STARTING,
                              "Starting replicas")
                # A scale-up starts every missing replica at once (their model loads overlap:
                # 2 -> 4 takes one start, not two); the first replica of a group starts alone.
                n = self.target - len(self._replicas) if self._replicas else 1
                # A group that served restarts its replicas with back-off until one starts,
                # it stops or its target changes; one that never served fails at once.
                results = await asyncio.gather(*(
                    retrying(lambda e: self._ever_ready, delay=0.5, max_delay=30.0,
                             give_up=lambda: self._stopping or self._changed.is_set(),
                             before_sleep=self._restart_failed)(self._start_one, prepared)
                    for _ in range(n)), return_exceptions=True)
                errors = [e for e in results if isinstance(e, BaseException)]
                if any(isinstance(e, asyncio.CancelledError) for e in errors):
                    raise asyncio.CancelledError()
                for e in errors[:1]:
                    tail = self.logs.tail(20)
                    self.logs.server(f"replica failed to start: {e}")
                    if not self._ever_ready:
                        self._set(GroupState.FAILED, f"Replica failed to start: {e}. {last_error_line(tail)}")
                        return
                    self._set(GroupState.RECOVERING, f"Replica failed to restart: {e}")
                continue
            while len(self._replicas) > self.target:
                victim = min(self._replicas, key=lambda r: r.in_flight)
                self._replicas.remove(victim)
                await _drain(victim)
                await victim.kill()
            if self._replicas:
                self._set(GroupState.READY, f"{len(self._replicas)} replica(s) ready")
            elif self.target == 0:
                self._set(GroupState.SCALED_TO_ZERO, "Scaled to zero; the next request starts a replica")
            if len(self._replicas) != self.target:
                continue
            waiters = [asyncio.ensure_future(self._changed.wait())]
            waiters += [asyncio.ensure_future(r.wait()) for r in self._replicas]
            done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for w in pending:
                w.cancel()
            for r in list(self._replicas):
                if not r.alive and not self._stopping:
                    rc = r.proc.returncode if r.proc else None
                    self.logs.server(f"replica pid {r.pid} exited with code {rc}; restarting")
                    self._replicas.remove(r)

    def _restart_failed(self, e: BaseException, wait_s: float) -> None:
        self.logs.server(f"replica failed to start: {e}; trying again in {wait_s:.1f} s")
        self._set(GroupState.RECOVERING, f"Replica failed to restart: {e}")

    async def _start_one(self, prepared: Prepared) -> None:
        self._seq += 1
        sock = self.backend.socket_dir / f"{self.spec.key[:40]}-{self._seq}.sock"
        r = LocalReplica(prepared, sock, self.logs.server_path, self.spec.concurrency,
                         dict(self.spec.env_vars), self.spec.kind, self.backend.launcher)
        await r.start(self.backend.start_timeout, self.backend.warm)
        self._replicas.append(r)
        self._ever_ready = True
        self.last_used = time.monotonic()  # idle from when it can serve, not from the build
        self.logs.server(f"replica pid {r.pid} ready")
        self._ready.set()


async def _drain(r: LocalReplica, timeout: float = 30.0) -> None:
    await r.load.drained(timeout)



class LocalBackend:
    def __init__(self, prepare: Preparer, run_dir: Path, logs_dir: Path, start_timeout: float,
                 notify: Callable[[], None] = lambda: None, warm_spares: int = 1,
                 sandbox: Sandbox | None = None, template: bool = True, template_eager: bool = False,
                 template_prestarted: Prestarted | None = None, socket_dir: Path | None = None) -> None:
        self.prepare = prepare
        self.sandbox = sandbox or Sandbox("none", reason="not configured")
        # replicas of models in the server's own environment are forked from a template
        # process, started the first time a group needs it (an idle server has none)
        self.launcher = Launcher(self.sandbox, run_dir,
                                 Template(start_timeout, prestarted=template_prestarted) if template else None)
        # eager: the template starts with the server (the reconciler's first observation)
        self._template_eager = (template_eager or template_prestarted is not None) and template
        for stale in run_dir.glob("w-*"):  # scratch dirs of workers a killed server left
            shutil.rmtree(stale, ignore_errors=True)
        self.warm = WarmPool(self.launcher, warm_spares)
        self.run_dir = run_dir
        # the replicas' sockets: the server's short socket directory (socket_dir.py), else the run dir
        self.socket_dir = socket_dir or run_dir
        self.logs_dir = logs_dir
        self.start_timeout = start_timeout
        self._notify = notify
        self._groups: dict[str, LocalGroup] = {}
        self._woken: set[str] = set()

    def set_notify(self, notify: Callable[[], None]) -> None:
        self._notify = notify

    def notify(self) -> None:
        self._notify()

    def on_wake(self, key: str) -> None:
        self._notify()

    def logs_for(self, spec: GroupSpec) -> EntityLogs:
        return EntityLogs(self.logs_dir, spec.endpoint_id, spec.entity_name)

    def _start_template_early(self) -> None:
        if self._template_eager:
            self._template_eager = False
            asyncio.get_running_loop().create_task(self.launcher.template.ensure())

    def ensure(self, spec: GroupSpec, target: int) -> None:
        self._start_template_early()
        g = self._groups.get(spec.key)
        if g is None:
            g = LocalGroup(spec, target, self)
            self._groups[spec.key] = g
            g.logs.reset_build()
            g.logs.build(f"Creating served entity '{spec.entity_name}' "
                         f"(model {spec.model_name} version {spec.model_version})")
        else:
            g.set_target(target)

    async def stop(self, key: str) -> None:
        g = self._groups.get(key)
        if g is not None:
            await g.stop()
            self._groups.pop(key, None)
            self.notify()

    def observe(self) -> dict[str, GroupObs]:
        self._start_template_early()   # the reconciler's first observation is at the server's start
        return {k: g.observe() for k, g in self._groups.items()}

    def group(self, key: str) -> LocalGroup | None:
        return self._groups.get(key)

    def resource_usage(self, key: str) -> tuple[float, float]:
        """(cpu percent, resident MiB) summed over the group's replicas."""
        g = self._groups.get(key)
        cpu = mem = 0.0
        for r in g.replicas() if g else []:
            try:
                proc = psutil.Process(r.pid)
                cpu += proc.cpu_percent(None)
                mem += proc.memory_info().rss / 2**20
            except (psutil.Error, TypeError):
                pass
        return cpu, mem

    async def close(self) -> None:
        await asyncio.gather(*(g.stop(drain_timeout=5.0, grace=0.0) for g in self._groups.values()),
                             return_exceptions=True)
        self._groups.clear()
        await self.warm.close()
        if self.launcher.template is not None:
            await self.launcher.template.close()
