"""The processes the benchmark starts: a temporary `ladle server`, `mlflow models serve`
and the fake upstream. Each runs in its own session and is stopped by PID (its own
descendants too); nothing is looked up by name."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psutil

from ladle.testing.process import ChildProcess, LadleProcess, child_env, free_port

REPO_ROOT = Path(__file__).resolve().parents[1]


def bench_server(home: Path, token: str, idle_s: float) -> LadleProcess:
    """The benchmark's `ladle server`: scale-to-zero after `idle_s` idle seconds; its serving
    processes as a server's default (one per core) unless LADLE_GATEWAY_WORKERS says."""
    return LadleProcess(home, token, {"LADLE_SCALE_TO_ZERO_IDLE_S": str(idle_s),
                                      "LADLE_GATEWAY_WORKERS": os.environ.get("LADLE_GATEWAY_WORKERS", "0")},
                        cwd=REPO_ROOT)


class MlflowServe:
    """`mlflow models serve -m DIR --env-manager local` with its default worker count (1)."""

    def __init__(self, model_dir: Path, log_path: Path) -> None:
        self.port = free_port()
        mlflow_bin = Path(sys.executable).parent / "mlflow"
        head = [str(mlflow_bin)] if mlflow_bin.exists() else [sys.executable, "-m", "mlflow"]
        argv = [*head, "models", "serve", "-m", str(model_dir), "--env-manager", "local",
                "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = ChildProcess(argv, log_path, child_env(), REPO_ROOT)

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
        self.proc = ChildProcess(argv, log_path, child_env(), REPO_ROOT)

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
