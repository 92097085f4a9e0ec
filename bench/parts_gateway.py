"""Parts of bench/gateway.py: where each request's CPU time goes (per process), and the
random-forest endpoint against `mlflow models serve` with one and with N serving processes
in one run."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import psutil

from bench.load import LoadResult, run_wrk, wrk_script
from bench.procs import REPO_ROOT, MlflowServe
from ladle.testing.process import ChildProcess, LadleProcess, child_env, free_port

LITELLM_VENV = Path("/tmp/litellm-venv")
MSGS = [{"role": "user", "content": "Say something."}]


def load_avg() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}"


def _cpu(p: psutil.Process) -> float:
    try:
        t = p.cpu_times()
        return t.user + t.system
    except psutil.Error:
        return 0.0


def serving_processes(pid: int | None) -> dict[str, psutil.Process]:
    """The serving tree's processes by role: the server (or a LiteLLM master), its gateway
    workers, its other children summed as `other` (replicas, the registry)."""
    if pid is None:
        return {}
    root = psutil.Process(pid)
    out: dict[str, Any] = {"server": root}
    workers = 0
    for ch in root.children(recursive=True):
        try:
            cmd = " ".join(ch.cmdline())
        except psutil.Error:
            continue
        if "ladle.app_worker" in cmd or "litellm" in cmd or "uvicorn" in cmd:
            out[f"worker{workers}"] = ch
            workers += 1
        else:
            out.setdefault("other", []).append(ch)
    return out


@dataclass
class CpuSplit:
    """CPU microseconds per request in each process over one load run."""
    per: dict[str, float] = field(default_factory=dict)

    @property
    def serving(self) -> float:
        return sum(v for k, v in self.per.items() if k not in ("upstream", "wrk"))

    def text(self) -> str:
        return " ".join(f"{k} {v:.0f}" for k, v in self.per.items()) + f" | serving {self.serving:.0f} us/req"


def measured_run(wrk: str, url: str, script: Path, conc: int, duration: float, serving_pid: int | None,
                 upstream_pid: int | None) -> tuple[LoadResult, CpuSplit]:
    """One wrk run with the CPU time of every process counted (wrk: this process's children)."""
    procs = serving_processes(serving_pid)
    if upstream_pid is not None:
        procs["upstream"] = psutil.Process(upstream_pid)

    def now() -> dict[str, float]:
        return {k: (sum(_cpu(x) for x in p) if isinstance(p, list) else _cpu(p)) for k, p in procs.items()}

    before, t0 = now(), os.times()
    r = run_wrk(wrk, url, script, conc, duration)
    after, t1 = now(), os.times()
    n = max(r.requests, 1)
    per = {k: (after[k] - before[k]) * 1e6 / n for k in procs}
    per["wrk"] = ((t1.children_user + t1.children_system) - (t0.children_user + t0.children_system)) * 1e6 / n
    return r, CpuSplit(per)


class Target:
    """Something that answers chat completions: a URL path, its body and headers."""

    def __init__(self, name: str, url: str, path: str, model: str | None, headers: dict[str, str],
                 pid: int | None = None) -> None:
        self.name, self.url, self.path, self.model, self.headers = name, url, path, model, headers
        self.pid = pid      # the serving process tree's root (its CPU time is counted)

    def body(self, stream: bool) -> bytes:
        b: dict[str, Any] = {"messages": MSGS, "max_tokens": 8}
        if self.model:
            b["model"] = self.model
        if stream:
            b["stream"] = True
        return json.dumps(b).encode()


# -- LiteLLM's proxy and a Redis ---------------------------------------------------------------
def litellm_exe(given: str | None) -> str | None:
    if given:
        return given
    exe = LITELLM_VENV / "bin" / "litellm"
    if exe.exists():
        return str(exe)
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    if not Path(uv).exists():
        return None
    print(f"building {LITELLM_VENV} (litellm[proxy]) ...", flush=True)
    ok = subprocess.run([uv, "venv", str(LITELLM_VENV), "--python", "3.11", "-q"]).returncode == 0 and \
        subprocess.run([uv, "pip", "install", "--python", str(LITELLM_VENV / "bin" / "python"), "-q",
                        "litellm[proxy]"]).returncode == 0
    return str(exe) if ok and exe.exists() else None


class LiteLLM:
    def __init__(self, exe: str, upstream: str, workers: int, work: Path) -> None:
        self.port = free_port()
        self.key = "sk-master-" + secrets.token_hex(8)
        cfg = work / f"litellm-{workers}.yaml"
        cfg.write_text(json.dumps({   # YAML is a superset of JSON
            "model_list": [{"model_name": "fake", "litellm_params": {
                "model": "openai/fake-gpt", "api_base": upstream + "/v1", "api_key": "sk-bench"}}],
            "general_settings": {"master_key": self.key},
            "litellm_settings": {"drop_params": True, "set_verbose": False}}))
        env = child_env({"LITELLM_LOG": "ERROR", "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
        self.proc = ChildProcess([exe, "--config", str(cfg), "--host", "127.0.0.1", "--port", str(self.port),
                                  "--num_workers", str(workers)], work / f"litellm-{workers}.log", env, work)

    def start(self) -> float:
        self.proc.start()
        return self.proc.wait_http(f"http://127.0.0.1:{self.port}/health/liveliness", 400, interval=0.2)

    def target(self, name: str) -> "Target":
        return Target(name, f"http://127.0.0.1:{self.port}", "/v1/chat/completions", "fake",
                      {"Authorization": f"Bearer {self.key}"}, self.proc.pid)

    def stop(self) -> None:
        self.proc.stop()


def redis_server(work: Path) -> ChildProcess | None:
    """A redis-server on a free port (the one next to this interpreter, or on PATH)."""
    exe = Path(sys.executable).parent / "redis-server"
    found = str(exe) if exe.exists() else shutil.which("redis-server")
    if not found:
        return None
    port = free_port()
    proc = ChildProcess([found, "--port", str(port), "--save", "", "--appendonly", "no"],
                        work / "redis.log", child_env(), work)
    proc.start()
    proc.port = port  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    import socket
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if time.monotonic() > deadline:
                proc.stop()
                return None
            time.sleep(0.05)



# -- random forest against mlflow models serve -----------------------------------------------
RF_ENDPOINT = "bench-rf"


def _rf_server(work: Path, n: int, data: Any, log: Callable[[str], None]) -> tuple[LadleProcess, dict[str, str]]:
    srv = LadleProcess(work / f"ladle-rf-x{n}", "dapi-bench-" + secrets.token_hex(8),
                       {"LADLE_GATEWAY_WORKERS": str(n)}, cwd=REPO_ROOT)
    srv.start()
    try:
        versions = _rf_endpoint(srv, work, n, data)
        log(f"  ladle x{n}: {RF_ENDPOINT} READY")
        return srv, versions
    except BaseException:
        srv.stop()
        raise


def _rf_endpoint(srv: LadleProcess, work: Path, n: int, data: Any) -> dict[str, str]:
    from bench import models
    from bench.context import entity

    (work / f"reg-x{n}").mkdir(exist_ok=True)
    versions = models.register_all(srv.url, srv.admin_token, data, work / f"reg-x{n}")
    with srv.client() as c:
        c.post("/api/2.0/serving-endpoints", json={"name": RF_ENDPOINT, "config": {"served_entities": [
            entity(models.RF, versions[models.RF])]}}).raise_for_status()
        deadline = time.monotonic() + 300
        while True:
            st = c.get(f"/api/2.0/serving-endpoints/{RF_ENDPOINT}").json()["state"]
            if st.get("ready") == "READY" and st.get("config_update") == "NOT_UPDATING":
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{RF_ENDPOINT} did not become ready: {st}")
            time.sleep(0.1)
    return versions


def rf_vs_mlflow(work: Path, wrk: str, duration: float, counts: list[int],
                 log: Callable[[str], None] = print) -> dict[str, Any]:
    """c=32, one row: mlflow models serve next to ladle with each process count, interleaved
    (mlflow measured again beside each ladle run)."""
    from bench import models

    data = models.make_data()
    body = work / "rf-body.json"
    body.write_bytes(models.body(data, 0, 1))
    out: dict[str, Any] = {}
    mlflow: MlflowServe | None = None
    try:
        for n in counts:
            srv, versions = _rf_server(work, n, data, log)
            try:
                if mlflow is None:
                    model_dir = models.download(models.RF, versions[models.RF], work / "mlflow-model")
                    mlflow = MlflowServe(model_dir, work / "mlflow-serve.log")
                    mlflow.start()
                sides = ((f"ladle x{n}", f"{srv.url}/serving-endpoints/{RF_ENDPOINT}/invocations", srv.headers,
                          srv.proc.pid if srv.proc else None),
                         (f"mlflow (beside x{n})", mlflow.url + "/invocations", {}, mlflow.proc.pid))
                for name, url, hdrs, pid in sides:
                    script = work / f"rf-{n}-{name.split()[0]}.lua"
                    script.write_text(wrk_script(body, {"Content-Type": "application/json", **hdrs}))
                    run_wrk(wrk, url, script, 8, 2)          # warm
                    r, cpu = measured_run(wrk, url, script, 32, duration, pid, None)
                    out[name] = (r, cpu)
                    log(f"  rf c=32 {name:<20} {r.rps:7.0f}/s p50 {r.p50_ms or 0:6.2f} p99 {r.p99_ms or 0:6.2f} ms "
                        f"failed {r.failed}  {load_avg()}  CPU us/req: {cpu.text()}")
            finally:
                srv.stop()
    finally:
        if mlflow is not None:
            mlflow.stop()
    return out


