"""The embedded MLflow tracking server: MLflow's own `mlflow server` as a child process on
a private loopback port, SQLite backend and artifacts under LADLE_HOME."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import httpx


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
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        logf = open(self.log_path, "ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "mlflow", "server",
                "--backend-store-uri", f"sqlite:///{self.dir / 'mlflow.db'}",
                "--artifacts-destination", str(self.dir / "artifacts"),
                "--serve-artifacts", "--host", "127.0.0.1", "--port", str(self.port),
                "--workers", "1",
                stdin=asyncio.subprocess.DEVNULL, stdout=logf, stderr=logf,
                env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
                start_new_session=True,
            )
        finally:
            logf.close()

    async def wait_ready(self, timeout: float = 120.0) -> bool:
        deadline = asyncio.get_running_loop().time() + timeout
        async with httpx.AsyncClient(timeout=2.0) as c:
            while asyncio.get_running_loop().time() < deadline:
                if self.proc is not None and self.proc.returncode is not None:
                    return False
                try:
                    r = await c.get(self.url + "/health")
                    if r.status_code == 200:
                        return True
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.25)
        return False

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
