"""A real `ladle server` (or any server) as a child process in its own session, logging to a
file, stopped by its PID and its own descendants; nothing is looked up by name."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import httpx
import psutil

# Settings a developer's shell may carry that must not leak into a server under test.
CLIENT_ENV = ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN",
              "MLFLOW_REGISTRY_URI", "MLFLOW_MODELS_WORKERS", "MLFLOW_WORKERS")
LADLE_ARGV = [sys.executable, "-c", "from ladle.cli.main import main; main()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without client settings, with this interpreter's bin first on PATH
    (`mlflow models serve` runs `uvicorn` from PATH), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.update(extra or {})
    return env


class ChildProcess:
    """A child process in its own session, its output appended to `log_path`."""

    def __init__(self, argv: list[str], log_path: Path, env: dict[str, str], cwd: Path | None = None) -> None:
        self.argv, self.log_path, self.env, self.cwd = argv, log_path, env, cwd
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.started_at = time.perf_counter()
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, env=self.env,
                                         cwd=str(self.cwd) if self.cwd else None, start_new_session=True)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self, tail: int | None = None) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return text[-tail:] if tail else text

    def tree(self) -> list[psutil.Process]:
        """This process and its live descendants."""
        if not self.alive():
            return []
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self, grace: float = 40.0) -> None:
        """SIGTERM the session (the server drains and stops what it started), SIGKILL it after
        `grace` seconds, then kill any descendant still alive."""
        if self.proc is None:
            return
        kids = self.tree()[1:]
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(10)
        _, alive = psutil.wait_procs(kids, timeout=5)
        for p in alive:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=5)
        self.proc = None

    def wait_http(self, url: str, timeout: float, ok: Callable[[httpx.Response], bool] = lambda r: r.status_code == 200,
                  headers: dict[str, str] | None = None, interval: float = 0.05,
                  while_waiting: Callable[[], object] | None = None) -> float:
        """Poll `url` until ok(response); returns seconds since start(). `while_waiting` runs
        once first (slow work of the caller's own that can overlap the start)."""
        deadline = time.perf_counter() + timeout
        if while_waiting is not None:
            while_waiting()
        with httpx.Client(timeout=30.0, headers=headers) as c:
            while True:
                if not self.alive():
                    code = self.proc.returncode if self.proc else None
                    raise RuntimeError(f"{self.argv[:4]} exited with {code}:\n{self.output(4000)}")
                try:
                    if ok(c.get(url)):
                        return time.perf_counter() - self.started_at
                except httpx.HTTPError:
                    pass
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{url} not ready within {timeout:.0f}s:\n{self.output(4000)}")
                time.sleep(interval)


class LadleProcess:
    """`ladle server --port PORT` with its own LADLE_HOME and admin token."""

    def __init__(self, home: Path, admin_token: str, extra_env: dict[str, str] | None = None,
                 port: int | None = None, cwd: Path | None = None) -> None:
        self.home, self.admin_token, self.extra_env, self.cwd = home, admin_token, extra_env or {}, cwd
        self.port = port or free_port()
        self.proc: ChildProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def client(self, token: str | None = None, timeout: float = 60.0) -> httpx.Client:
        tok = self.admin_token if token is None else token
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {tok}"} if tok else {},
                            timeout=timeout)

    def start(self, timeout: float = 240.0, while_starting: Callable[[], object] | None = None) -> float:
        """Start it and wait until its API and its MLflow registry answer; returns the seconds
        that took. `while_starting` runs meanwhile."""
        self.home.mkdir(parents=True, exist_ok=True)
        # one serving process unless asked for gateway workers: by `extra_env`, or for every
        # server of a run by LADLE_GATEWAY_WORKERS in the caller's environment
        env = child_env({"LADLE_HOME": str(self.home), "LADLE_ADMIN_TOKEN": self.admin_token,
                         "LADLE_GATEWAY_WORKERS": os.environ.get("LADLE_GATEWAY_WORKERS", "1"),
                         # the servers of one test directory share a cache, never the user's
                         "LADLE_CACHE_DIR": str(self.home.parent / "ladle-cache"),
                         **self.extra_env})
        self.proc = ChildProcess([*LADLE_ARGV, "server", "--port", str(self.port)],
                                 self.home / "server-process.log", env, self.cwd)
        self.proc.start()
        try:
            self.proc.wait_http(self.url + "/health", timeout, while_waiting=while_starting)
            return self.proc.wait_http(self.url + "/api/2.0/mlflow/registered-models/search", timeout,
                                       headers=self.headers, interval=0.25)
        except BaseException:
            self.stop()
            raise

    def stop(self, grace: float = 40.0) -> None:
        if self.proc is not None:
            self.proc.stop(grace)

    def restart(self) -> None:
        self.stop()
        self.start()

    def output(self, tail: int | None = None) -> str:
        return self.proc.output(tail) if self.proc else ""

    def descendants(self) -> list[psutil.Process]:
        return self.proc.tree()[1:] if self.proc else []

    def replica_procs(self, endpoint_id: str | None = None) -> list[psutil.Process]:
        """Live replica worker processes serving a model (of one endpoint, if given).

        A replica is known by its command line, or, for a pre-warmed spare that was handed a
        model, by the endpoint's log file it writes to (logs/<endpoint id>/...) or its socket
        (named after the first 12 characters of the endpoint id). Idle spares are not counted,
        nor is the replica template; the replicas forked from it carry its command line."""
        out = []
        for p in self.descendants():
            try:
                cmd = " ".join(p.cmdline())
                forked = "ladle.replica.template" in cmd
                if ("ladle.replica.worker" not in cmd and not forked) or p.status() == psutil.STATUS_ZOMBIE:
                    continue
                marks = [cmd] + [f.path for f in p.open_files()]
                marks += [c.laddr for c in p.net_connections(kind="unix") if isinstance(c.laddr, str)]
            except psutil.Error:
                continue
            if endpoint_id is None:
                if ("--standby" not in cmd and not forked) or any("/logs/" in m for m in marks[1:]):
                    out.append(p)
            elif any(f"/{endpoint_id}/" in m or f"/{endpoint_id[:12]}-" in m for m in marks):
                out.append(p)
        return out
