"""Pre-warmed replica processes: one spare per interpreter has already imported MLflow and
pandas and waits for a model to load, so starting a replica (and a cold start from zero)
costs only the model load. A spare is replaced as soon as it is taken."""

from __future__ import annotations

import asyncio
import os
import signal

import orjson


class WarmPool:
    def __init__(self, spares: int = 1) -> None:
        self.spares = spares
        self._idle: dict[tuple[str, str], list[asyncio.subprocess.Process]] = {}
        self._closed = False

    @staticmethod
    def _key(python: str, env: dict[str, str]) -> tuple[str, str]:
        return python, env.get("PYTHONPATH", "")

    async def _spawn(self, python: str, env: dict[str, str]) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            python, "-m", "ladle.replica.worker", "--standby",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )

    async def fill(self, python: str, env: dict[str, str]) -> None:
        if self._closed or self.spares <= 0:
            return
        idle = self._idle.setdefault(self._key(python, env), [])
        idle[:] = [p for p in idle if p.returncode is None]
        while len(idle) < self.spares:
            idle.append(await self._spawn(python, env))

    async def start(self, python: str, env: dict[str, str], job: dict) -> asyncio.subprocess.Process | None:
        """Hand `job` to a spare and return its process, or None when none is ready."""
        idle = self._idle.get(self._key(python, env), [])
        while idle:
            proc = idle.pop(0)
            if proc.returncode is not None or proc.stdin is None:
                continue
            try:
                proc.stdin.write(orjson.dumps(job) + b"\n")
                await proc.stdin.drain()
                proc.stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                continue
            asyncio.get_running_loop().create_task(self.fill(python, env))
            return proc
        asyncio.get_running_loop().create_task(self.fill(python, env))
        return None

    async def close(self) -> None:
        self._closed = True
        for procs in self._idle.values():
            for p in procs:
                if p.returncode is None:
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    await p.wait()
        self._idle.clear()
