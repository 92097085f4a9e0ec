"""The embedded MLflow tracking server: MLflow's own server as a child process on a private
loopback port, SQLite backend and artifacts under LADLE_HOME, answering only requests that
carry a token made at each start (ladle.runtimes.mlflow_gate); `token` is for ladle's
server code only (the proxy, the registry look-ups, model downloads).

It starts on first use (socket activation, as systemd and inetd do it): the server binds and
listens on the port itself, and the first connection that arrives starts the child, which
inherits the listening socket and accepts that connection and every later one from the
kernel's backlog. A server that never touches the registry never pays for MLflow (~200 MB and
seconds of imports); one that does pays it once, and no caller sees a refused connection."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import sys
from pathlib import Path


from ladle.support.child_env import server_child_env


class TrackingServer:
    def __init__(self, mlflow_dir: Path, log_path: Path, cache_dir: Path | None = None) -> None:
        self.dir = mlflow_dir
        self.cache_dir = cache_dir   # a new home's database is copied from a migrated one there
        self.log_path = log_path
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_urlsafe(32)
        self.proc: asyncio.subprocess.Process | None = None
        self._spawning: asyncio.Task | None = None
        self._watching = False

    async def start(self) -> None:
        """Start watching the port; the child starts when the first connection is pending."""
        loop = asyncio.get_running_loop()
        loop.add_reader(self.sock.fileno(), self._activate)
        self._watching = True

    def _activate(self) -> None:
        if self._watching:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self._watching = False
        if self._spawning is None:
            self._spawning = asyncio.get_running_loop().create_task(self._spawn())

    async def _spawn(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = self.sock.fileno()
        logf = open(self.log_path, "ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "ladle.runtimes.mlflow_gate",
                "--backend-store-uri", f"sqlite:///{self.dir / 'mlflow.db'}",
                "--artifacts-destination", str(self.dir / "artifacts"),
                "--fd", str(fd),
                *(["--cache-dir", str(self.cache_dir)] if self.cache_dir is not None else []),
                stdin=asyncio.subprocess.PIPE, stdout=logf, stderr=logf, pass_fds=(fd,),
                env=server_child_env({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}),
                start_new_session=True,
            )
            assert self.proc.stdin is not None
            self.proc.stdin.write(self.token.encode() + b"\n")
            await self.proc.stdin.drain()
            self.proc.stdin.close()
        finally:
            logf.close()
            self.sock.close()   # the child holds the listening socket now

    async def stop(self) -> None:
        if self._watching:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self._watching = False
        if self._spawning is not None:
            try:
                await self._spawning
            except Exception:   # noqa: BLE001 (a failed start leaves nothing to stop)
                pass
        self.sock.close()
        if self.proc is None or self.proc.returncode is not None:
            return
        import signal

        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            await asyncio.wait_for(self.proc.wait(), 10)
        except (ProcessLookupError, asyncio.TimeoutError):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
