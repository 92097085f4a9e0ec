"""The embedded MLflow tracking server: MLflow's own server as a child process on a private
loopback port, SQLite backend and artifacts under LADLE_HOME, answering only requests that
carry a token made at each start (ladle.runtimes.mlflow_gate); `token` is for ladle's
server code only (the proxy, the registry look-ups, model downloads)."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import sys
from pathlib import Path


from ladle.support.child_env import server_child_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TrackingServer:
    def __init__(self, mlflow_dir: Path, log_path: Path) -> None:
        self.dir = mlflow_dir
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_urlsafe(32)
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        logf = open(self.log_path, "ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "ladle.runtimes.mlflow_gate",
                "--backend-store-uri", f"sqlite:///{self.dir / 'mlflow.db'}",
                "--artifacts-destination", str(self.dir / "artifacts"),
                "--host", "127.0.0.1", "--port", str(self.port),
                stdin=asyncio.subprocess.PIPE, stdout=logf, stderr=logf,
                env=server_child_env({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}),
                start_new_session=True,
            )
            assert self.proc.stdin is not None
            self.proc.stdin.write(self.token.encode() + b"\n")
            await self.proc.stdin.drain()
            self.proc.stdin.close()
        finally:
            logf.close()

    async def stop(self) -> None:
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
