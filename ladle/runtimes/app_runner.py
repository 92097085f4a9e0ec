"""Running apps: one supervised process per app, confined like the model workers.

`deploy` builds the deployment's environment (ladle/runtimes/app_env.py), starts the new
process beside the running one (ladle/runtimes/app_process.py), waits until it listens on
its port, then stops the old one: a deployment that fails (no requirements.txt, a failed
build, a command that exits at once, an app that never listens) raises with a message naming
what is wrong, and the previous deployment keeps serving. A process that exits is restarted
with exponential back-off (tenacity); the back-off starts over once a process has run for
`stable_s` seconds. `status` says where an app stands in the Databricks enums
(ComputeState, ApplicationState) with a message; everything the runner does is noted in the
app's log (`log_path`), after the app's own output.

The runner keeps no state across server restarts: whoever owns the apps' records starts
them again (`start(name, launch)`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_never, wait_exponential

from ladle.runtimes.app_env import build_env
from ladle.runtimes.app_process import AppProcess, AppStartError, open_to_worker, spawn, terminate, wait_listening
from ladle.runtimes.sandbox import Sandbox
from ladle.schemas.apps import AppLaunch

log = logging.getLogger("ladle.apps")


class _Crashed(Exception):
    """The app exited (or failed to start again) soon after it started: back off."""


class _ExitedAfterStableRun(Exception):
    """The app exited after running a while: restart it at once, back-off from scratch."""


@dataclass
class _App:
    name: str
    current: AppProcess | None = None
    good: tuple[AppLaunch, Path] | None = None    # the last deployment that came up, its env dir
    compute: str = "STOPPED"
    state: str = "UNAVAILABLE"
    message: str = "App has not been deployed."
    supervisor: asyncio.Task | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class AppRunner:
    def __init__(self, sandbox: Sandbox, apps_dir: Path, envs_dir: Path, run_dir: Path,
                 start_timeout_s: float = 60.0, backoff_s: float = 1.0, backoff_max_s: float = 60.0,
                 stable_s: float = 30.0, build_timeout_s: float = 900.0) -> None:
        self.sandbox = sandbox
        self.apps_dir = apps_dir
        self.envs_dir = envs_dir
        self.run_dir = run_dir
        self.start_timeout_s = start_timeout_s
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.stable_s = stable_s
        self.build_timeout_s = build_timeout_s
        self._apps: dict[str, _App] = {}

    # -- what callers read ------------------------------------------------------------------
    def status(self, app_name: str) -> tuple[str, str, str]:
        """(compute_state, app_state, message) in Databricks' enum values."""
        a = self._apps.get(app_name)
        if a is None:
            return "STOPPED", "UNAVAILABLE", "App has not been deployed."
        return a.compute, a.state, a.message

    def port(self, app_name: str) -> int | None:
        """The loopback port of the app's serving process, when it serves."""
        a = self._apps.get(app_name)
        if a is None or a.current is None or a.state != "RUNNING":
            return None
        return a.current.port

    def log_path(self, app_name: str) -> Path:
        return self.apps_dir / app_name / "logs" / "app.log"

    # -- what callers do ----------------------------------------------------------------------
    async def deploy(self, launch: AppLaunch, on_progress: Callable[[str], None]) -> None:
        """Build, start beside the running deployment, switch once it listens. Raises
        RuntimeError (its message for the deployment's status) and keeps the old one serving."""
        a = self._apps.setdefault(launch.app_name, _App(launch.app_name))
        async with a.lock:
            await asyncio.to_thread(self.log_path(a.name).parent.mkdir, parents=True, exist_ok=True)
            await self._note(a, f"deployment {launch.deployment_id}: building the environment")
            if a.current is None:
                a.compute, a.state, a.message = "STARTING", "DEPLOYING", "App is being deployed."
            try:
                on_progress("Building the app's environment from requirements.txt")
                env_dir = await build_env(launch.source_dir, self.envs_dir, on_progress, self.build_timeout_s)
                on_progress(f"Starting the app: {' '.join(launch.command)}")
                p = await self._start_process(a, launch, env_dir)
            except RuntimeError as e:
                await self._note(a, f"deployment {launch.deployment_id} failed: {e}")
                if a.current is None:
                    a.compute, a.state, a.message = "ACTIVE", "UNAVAILABLE", f"Deployment failed: {e}"
                raise
            await self._switch(a, p, (launch, env_dir))
            on_progress("App started successfully")

    async def start(self, app_name: str, launch: AppLaunch | None = None) -> None:
        """Run the app's last good deployment (or `launch`, after a server restart)."""
        a = self._apps.setdefault(app_name, _App(app_name))
        async with a.lock:
            if a.current is not None and a.current.proc.returncode is None:
                return
            if launch is not None:
                env_dir = await build_env(launch.source_dir, self.envs_dir, lambda _: None, self.build_timeout_s)
                good = (launch, env_dir)
            elif a.good is not None:
                good = a.good
            else:
                raise RuntimeError(f"app {app_name!r} has no deployment to start")
            await asyncio.to_thread(self.log_path(a.name).parent.mkdir, parents=True, exist_ok=True)
            a.compute, a.state, a.message = "STARTING", "DEPLOYING", "App is starting."
            try:
                p = await self._start_process(a, *good)
            except RuntimeError as e:
                a.compute, a.state, a.message = "ERROR", "UNAVAILABLE", f"App failed to start: {e}"
                raise
            await self._switch(a, p, good)

    async def stop(self, app_name: str) -> None:
        a = self._apps.get(app_name)
        if a is None:
            return
        async with a.lock:
            a.compute, a.state, a.message = "STOPPING", "UNAVAILABLE", "App is stopping."
            await self._halt(a)
            a.compute, a.state, a.message = "STOPPED", "UNAVAILABLE", "App is stopped."
            await self._note(a, "stopped")

    async def remove(self, app_name: str) -> None:
        """Stop the app and forget it (the app was deleted)."""
        await self.stop(app_name)
        self._apps.pop(app_name, None)

    async def close(self) -> None:
        await asyncio.gather(*(self.stop(n) for n in list(self._apps)), return_exceptions=True)

    # -- inside -------------------------------------------------------------------------------
    async def _start_process(self, a: _App, launch: AppLaunch, env_dir: Path) -> AppProcess:
        if self.sandbox.mode == "user":
            await asyncio.to_thread(open_to_worker, launch.source_dir)
        await self._note(a, f"deployment {launch.deployment_id}: starting {' '.join(launch.command)}")
        p = await spawn(self.sandbox, launch, env_dir, self.run_dir, self.log_path(a.name))
        try:
            await wait_listening(p, self.start_timeout_s)
        except BaseException:
            await terminate(p)
            raise
        return p

    async def _switch(self, a: _App, p: AppProcess, good: tuple[AppLaunch, Path]) -> None:
        await self._halt(a)
        a.current, a.good = p, good
        a.compute, a.state, a.message = "ACTIVE", "RUNNING", "App is running."
        await self._note(a, f"deployment {good[0].deployment_id}: listening on port {p.port}")
        a.supervisor = asyncio.get_running_loop().create_task(self._supervise(a), name=f"app {a.name}")

    async def _halt(self, a: _App) -> None:
        if a.supervisor is not None:
            a.supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await a.supervisor
            a.supervisor = None
        if a.current is not None:
            old, a.current = a.current, None
            await terminate(old)

    async def _supervise(self, a: _App) -> None:
        while True:
            try:
                async for attempt in AsyncRetrying(
                        retry=retry_if_exception_type(_Crashed), stop=stop_never, reraise=True,
                        wait=wait_exponential(multiplier=self.backoff_s, max=self.backoff_max_s),
                        before_sleep=functools.partial(self._crashed, a)):
                    with attempt:
                        await self._run_once(a)
            except _ExitedAfterStableRun:
                continue

    async def _run_once(self, a: _App) -> None:
        """Wait for the app's process to exit (starting one first when none runs)."""
        p = a.current
        if p is None or p.proc.returncode is not None:
            assert a.good is not None
            launch, env_dir = a.good
            if p is not None:
                a.current = None
                await terminate(p)
            a.compute, a.state = "ACTIVE", "DEPLOYING"
            try:
                p = await self._start_process(a, launch, env_dir)
            except AppStartError as e:
                raise _Crashed(str(e)) from None
            a.current = p
            a.state, a.message = "RUNNING", "App is running."
            await self._note(a, f"restarted, listening on port {p.port}")
        rc = await p.proc.wait()
        ran = time.monotonic() - p.started
        await self._note(a, f"the app exited with code {rc} after {ran:.1f}s")
        if ran >= self.stable_s:
            raise _ExitedAfterStableRun()
        raise _Crashed(f"the app exited with code {rc}")

    async def _crashed(self, a: _App, rs: RetryCallState) -> None:
        delay = rs.next_action.sleep if rs.next_action else 0.0
        why = rs.outcome.exception() if rs.outcome else None
        a.compute, a.state = "ACTIVE", "CRASHED"
        a.message = (f"App crashed ({why}); restart {rs.attempt_number} in {delay:.1f}s. "
                     "See the app's logs.")
        await self._note(a, a.message)

    async def _note(self, a: _App, text: str) -> None:
        line = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} [ladle] {text}\n"
        log.info("app %s: %s", a.name, text)
        await asyncio.to_thread(_append, self.log_path(a.name), line)


def _append(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(line)
