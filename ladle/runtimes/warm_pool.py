"""Pre-warmed replica processes: one spare per interpreter has already confined itself,
imported MLflow and pandas, and waits for a model to load, so starting a replica (and a cold
start from zero) costs only the model load. A spare is replaced as soon as it is taken.

A spare is started exactly as a fresh worker (worker_launch.Launcher: scrubbed environment,
its own scratch directory, confined before it imports anything); the job it is handed
later carries the served entity's environment.

Where workers are forked from the replica template (the server's own environment), the
template is the spare: `fill` only makes sure it runs, `take` has nothing to give."""

from __future__ import annotations

import asyncio
import os
import signal

from ladle.runtimes.worker_launch import Launched, Launcher


class WarmPool:
    def __init__(self, launcher: Launcher, spares: int = 1) -> None:
        self.launcher = launcher
        self.spares = spares
        self._idle: dict[tuple[str, str], list[Launched]] = {}
        self._closed = False

    @staticmethod
    def _key(python: str, env: dict[str, str]) -> tuple[str, str]:
        return python, env.get("PYTHONPATH", "")

    async def fill(self, python: str, env: dict[str, str]) -> None:
        if self._closed:
            return
        if self.launcher.forks(python, env):
            await self.launcher.template.ensure()
            return
        if self.spares <= 0:
            return
        idle = self._idle.setdefault(self._key(python, env), [])
        for w in [w for w in idle if w.proc.returncode is not None]:
            idle.remove(w)
            await self._discard(w)
        while len(idle) < self.spares and not self._closed:
            idle.append(await self.launcher.spawn(python, env, warm=True))

    def take(self, python: str, env: dict[str, str]) -> Launched | None:
        """A live spare for this interpreter (None when none is ready); a new one is started."""
        if self.launcher.forks(python, env):
            return None
        idle = self._idle.get(self._key(python, env), [])
        found = None
        while idle:
            w = idle.pop(0)
            if w.proc.returncode is None:
                found = w
                break
            asyncio.get_running_loop().create_task(self._discard(w))
        asyncio.get_running_loop().create_task(self.fill(python, env))
        return found

    async def _discard(self, w: Launched) -> None:
        w.ctl.close()
        await self.launcher.remove(w.scratch)

    async def close(self) -> None:
        self._closed = True
        for spares in self._idle.values():
            for w in spares:
                if w.proc.returncode is None:
                    try:
                        os.killpg(w.proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    await w.proc.wait()
                await self._discard(w)
        self._idle.clear()
