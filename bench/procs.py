"""The processes the benchmark starts: a temporary `ladle server`, `mlflow models serve`
and the fake upstream. Each runs in its own session and is stopped by PID (its own
descendants too); nothing is looked up by name."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
_CLEAN_ENV = ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN",
              "MLFLOW_MODELS_WORKERS", "MLFLOW_WORKERS")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _CLEAN_ENV}
    bindir = str(Path(sys.executable).parent)   # `mlflow models serve` runs `uvicorn` from PATH
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env.update(extra)
    return env


class Proc:
    """A child process in its own session, logging to a file."""

    def __init__(self, argv: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.argv, self.log_path, self.env = argv, log_path, env
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.started_at = time.perf_counter()
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, env=self.env, cwd=str(REPO_ROOT),
                                         start_new_session=True)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except FileNotFoundError:
            return ""

    def tree(self) -> list[psutil.Process]:
        """This process and its live descendants."""
        if not self.alive():
            return []
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self, grace: float = 30.0) -> None:
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

    def wait_http(self, url: str, timeout: float, ok=lambda r: r.status_code == 200,
                  headers: dict[str, str] | None = None, interval: float = 0.05) -> float:
        """Poll url until ok(response); returns seconds since start()."""
        deadline = time.perf_counter() + timeout
        with httpx.Client(timeout=5.0, headers=headers) as c:
            while True:
                if not self.alive():
                    raise RuntimeError(f"{self.argv[:4]} exited with {self.proc and self.proc.returncode}:"
                                       f"\n{self.output()}")
                try:
                    if ok(c.get(url)):
                        return time.perf_counter() - self.started_at
                except httpx.HTTPError:
                    pass
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{url} not ready within {timeout:.0f}s:\n{self.output()}")
                time.sleep(interval)


@dataclass
class LadleServer:
    home: Path
    token: str
    idle_s: float
    port: int = 0
    proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 240.0) -> float:
        self.port = self.port or free_port()
        env = _env({"LADLE_HOME": str(self.home), "LADLE_ADMIN_TOKEN": self.token,
                    "LADLE_SCALE_TO_ZERO_IDLE_S": str(self.idle_s)})
        argv = [sys.executable, "-c", "from ladle.cli.main import main; main()", "server",
                "--port", str(self.port)]
        self.proc = Proc(argv, self.home / "server-process.log", env)
        self.proc.start()
        hdrs = {"Authorization": f"Bearer {self.token}"}
        self.proc.wait_http(self.url + "/health", timeout)
        return self.proc.wait_http(self.url + "/api/2.0/mlflow/registered-models/search", timeout,
                                   headers=hdrs, interval=0.25)

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()

    def replica_procs(self) -> list[psutil.Process]:
        out = []
        for p in (self.proc.tree()[1:] if self.proc else []):
            try:
                if p.status() != psutil.STATUS_ZOMBIE and "ladle.replica.worker" in " ".join(p.cmdline()):
                    out.append(p)
            except psutil.Error:
                continue
        return out


class MlflowServe:
    """`mlflow models serve -m DIR --env-manager local` with its default worker count (1)."""

    def __init__(self, model_dir: Path, log_path: Path) -> None:
        self.port = free_port()
        mlflow_bin = Path(sys.executable).parent / "mlflow"
        head = [str(mlflow_bin)] if mlflow_bin.exists() else [sys.executable, "-m", "mlflow"]
        argv = [*head, "models", "serve", "-m", str(model_dir), "--env-manager", "local",
                "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = Proc(argv, log_path, _env({}))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> float:
        """Start it; returns process start -> /ping 200 in seconds."""
        self.proc.start()
        return self.proc.wait_http(self.url + "/ping", timeout, interval=0.02)

    def stop(self) -> None:
        self.proc.stop()


class FakeUpstream:
    def __init__(self, log_path: Path, tokens: int = 8, interval_ms: float = 5.0) -> None:
        self.port = free_port()
        argv = [sys.executable, "-m", "bench.fake_openai", "--port", str(self.port),
                "--tokens", str(tokens), "--interval-ms", str(interval_ms)]
        self.proc = Proc(argv, log_path, _env({}))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc.start()
        self.proc.wait_http(self.url + "/health", 30.0)

    def stop(self) -> None:
        self.proc.stop()


def mem_mib(p: psutil.Process) -> tuple[float, float | None]:
    """(RSS, USS) in MiB; USS is None where it cannot be read."""
    try:
        rss = p.memory_info().rss / 2**20
    except psutil.Error:
        return 0.0, None
    try:
        uss = p.memory_full_info().uss / 2**20
    except psutil.Error:
        uss = None
    return rss, uss
