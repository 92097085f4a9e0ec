"""Start-up and memory footprint, side by side in one run: `ladle server` (idle, then with one
random-forest endpoint) against `mlflow models serve` on the same model.

Memory is counted fairly: PSS (proportional set size: a page shared by N processes counts
1/N in each, so a tree's PSS sums to what it really holds) and USS (pages only that process
holds), per process and for each whole process tree, from psutil's memory_full_info (Linux
smaps_rollup). RSS is printed too, for comparison with older figures, but it counts shared
pages once per process.

    .venv/bin/python -m bench.footprint [--keep DIR]

Timings it prints: `ladle server --demo` -> the endpoint `demo` READY (a new home: first
with an empty `LADLE_CACHE_DIR`, as a machine's first start, then with the cache it left); server
start -> /health 200, -> the control API answers, -> the embedded
MLflow registry answers; create -> READY of the first endpoint (cold environment) and of a
second endpoint on the same model (environment reused); `mlflow models serve` start -> /ping;
a call to the stopped registry -> its answer (the wake).

The server runs with a short `LADLE_REGISTRY_IDLE_S` (IDLE_S, printed): after the idle and the
one-endpoint measurements the bench waits until the registry's process has stopped and
measures the tree again "at rest" (the registry is stopped whenever nobody used it for that
long; default 120 s).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

from bench import models
from bench.context import entity
from bench.procs import REPO_ROOT, MlflowServe
from ladle.testing.process import LADLE_ARGV, ChildProcess, LadleProcess, child_env, free_port

API = "/api/2.0/serving-endpoints"
MIB = 2**20
IDLE_S = 20.0    # the bench server's LADLE_REGISTRY_IDLE_S
REGISTRY = "embedded MLflow registry"


def mem(p: psutil.Process) -> tuple[float, float, float]:
    """(RSS, PSS, USS) in MiB; zeros for a process that went away."""
    try:
        m = p.memory_full_info()
    except psutil.Error:
        return 0.0, 0.0, 0.0
    return m.rss / MIB, getattr(m, "pss", 0.0) / MIB, m.uss / MIB


def label(p: psutil.Process, root_pid: int) -> str:
    try:
        cmd = " ".join(p.cmdline())
    except psutil.Error:
        return "(gone)"
    if p.pid == root_pid:
        return "mlflow CLI" if "models serve" in cmd else "server"
    if "mlflow_gate" in cmd:
        return REGISTRY
    if "ladle.replica.template" in cmd:
        try:
            forked = "ladle.replica.template" in " ".join(p.parent().cmdline())
        except (psutil.Error, AttributeError):
            forked = False
        return "replica (forked)" if forked else "replica template"
    if "ladle.replica.worker" in cmd:
        return "warm spare (idle)" if "--standby" in cmd and not _has_logs(p) else "replica"
    if "models serve" in cmd or "mlflow" in cmd.split(" ")[0]:
        return "mlflow CLI"
    if "uvicorn" in cmd:
        return "mlflow uvicorn worker"
    return cmd[:60]


def _has_logs(p: psutil.Process) -> bool:
    try:
        return any("/logs/" in f.path for f in p.open_files())
    except psutil.Error:
        return False


def _settled_tree(root: psutil.Process) -> list[psutil.Process]:
    time.sleep(2.0)   # a replica that just answered READY has its model loaded; let it settle
    return tree(root)


def _settled(root: psutil.Process) -> float:
    """The tree's PSS (MiB), without printing."""
    return sum(mem(p)[1] for p in _settled_tree(root))


def tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def report(title: str, procs: list[psutil.Process]) -> tuple[float, float, float]:
    """Print one row per process and the tree's totals; returns the totals (RSS, PSS, USS)."""
    print(f"\n{title}")
    print(f"  {'process':<28}{'pid':>8}{'RSS MiB':>10}{'PSS MiB':>10}{'USS MiB':>10}")
    tot = [0.0, 0.0, 0.0]
    root_pid = procs[0].pid if procs else -1
    for p in procs:
        r = mem(p)
        tot = [a + b for a, b in zip(tot, r)]
        print(f"  {label(p, root_pid):<28}{p.pid:>8}{r[0]:>10.0f}{r[1]:>10.0f}{r[2]:>10.0f}")
    print(f"  {'whole tree':<28}{'':>8}{tot[0]:>10.0f}{tot[1]:>10.0f}{tot[2]:>10.0f}")
    return tot[0], tot[1], tot[2]


def idle_untouched(home: Path) -> float:
    """A server that has only answered /health (its registry never used, so never started);
    returns its tree's PSS."""
    port, token = free_port(), "dapi" + secrets.token_hex(16)
    env = child_env({"LADLE_HOME": str(home), "LADLE_ADMIN_TOKEN": token})
    proc = ChildProcess([*LADLE_ARGV, "server", "--port", str(port)], home / "server.log", env, REPO_ROOT)
    proc.start()
    try:
        proc.wait_http(f"http://127.0.0.1:{port}/health", 120)
        time.sleep(2.0)   # let a warm spare (if any) finish its imports before it is counted
        return report("ladle server, idle, registry never used (not started)", proc.tree())[1]
    finally:
        proc.stop()


def demo_ready(home: Path, cache: Path | None = None) -> tuple[float, float]:
    """`ladle server --demo` on a new home, as a new user runs it: seconds from the command to
    /health and to the endpoint `demo` READY; returns (health, ready). `cache`: a
    LADLE_CACHE_DIR instead of the user's (an empty one: the machine's first start)."""
    port, token = free_port(), "dapi" + secrets.token_hex(16)
    env = child_env({"LADLE_HOME": str(home), "LADLE_ADMIN_TOKEN": token,
                     **({"LADLE_CACHE_DIR": str(cache)} if cache is not None else {})})
    proc = ChildProcess([*LADLE_ARGV, "server", "--port", str(port), "--demo"], home / "server.log", env,
                        REPO_ROOT)
    proc.start()
    url = f"http://127.0.0.1:{port}"
    try:
        health = proc.wait_http(f"{url}/health", 120)
        ready = proc.wait_http(
            f"{url}{API}/demo", 300, headers={"Authorization": f"Bearer {token}"},
            ok=lambda r: r.status_code == 200 and r.json().get("state", {}).get("ready") == "READY")
        return health, ready
    finally:
        proc.stop()


def wait_ready(http: httpx.Client, name: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = http.get(f"{API}/{name}").json().get("state", {})
        if st.get("config_update") == "UPDATE_FAILED":
            raise RuntimeError(f"{name} failed: {st}")
        if st.get("ready") == "READY" and st.get("config_update") == "NOT_UPDATING":
            return
        time.sleep(0.05)
    raise RuntimeError(f"{name} not READY within {timeout:.0f} s")


def create_timed(http: httpx.Client, name: str, ents: list[dict]) -> float:
    t0 = time.monotonic()
    r = http.post(API, json={"name": name, "config": {"served_entities": ents}})
    r.raise_for_status()
    wait_ready(http, name)
    return time.monotonic() - t0


def registry_running(root: psutil.Process) -> bool:
    for p in tree(root):
        try:
            if label(p, root.pid) == REGISTRY and p.status() != psutil.STATUS_ZOMBIE:
                return True
        except psutil.Error:
            pass
    return False


def wait_registry_stopped(root: psutil.Process, timeout: float = IDLE_S + 120) -> float:
    """Seconds until the registry's process is gone (it stops after IDLE_S without a call)."""
    t0 = time.monotonic()
    while registry_running(root):
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"the registry did not stop within {timeout:.0f} s")
        time.sleep(0.25)
    return time.monotonic() - t0


def wake(http: httpx.Client) -> float:
    """Seconds from a registry call (through ladle's MLflow proxy) to its answer."""
    t0 = time.monotonic()
    http.get("/api/2.0/mlflow/registered-models/search").raise_for_status()
    return time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.footprint")
    ap.add_argument("--keep", type=Path, default=None, help="keep the working directory here")
    ap.add_argument("--no-demo", action="store_true", help="skip the `ladle server --demo` start-up part")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="ladle-footprint-")) if args.keep is None else args.keep
    tmp.mkdir(parents=True, exist_ok=True)
    ladle = LadleProcess(tmp / "home", "dapi" + secrets.token_hex(16), cwd=REPO_ROOT,
                         extra_env={"LADLE_REGISTRY_IDLE_S": f"{IDLE_S:g}"})
    print(f"ladle server under test: LADLE_REGISTRY_IDLE_S={IDLE_S:g} (the registry stops after "
          f"{IDLE_S:g} s without a call; default 120)")
    serve: MlflowServe | None = None
    try:
        ladle.home.mkdir(parents=True, exist_ok=True)
        untouched = idle_untouched(tmp / "home-untouched")
        times: dict[str, float] = {}
        if not args.no_demo:
            times["ladle server --demo -> demo READY (first start: empty cache)"] = \
                demo_ready(tmp / "home-demo-cold", cache=tmp / "demo-cache")[1]
            times["ladle server --demo -> /health"], times["ladle server --demo -> demo READY"] = \
                demo_ready(tmp / "home-demo", cache=tmp / "demo-cache")     # the cache as the first left it
        _start(ladle, times)
        root = psutil.Process(ladle.proc.pid)
        time.sleep(2.0)   # let the warm spare finish its imports before it is counted
        idle = report("ladle server, idle (no endpoints), registry started", tree(root))
        stop_s = wait_registry_stopped(root)
        idle_rest = report(f"ladle server, idle (no endpoints), registry stopped (waited {stop_s:.0f} s "
                           "for it)", tree(root))
        with ladle.client() as http:
            times["registry stopped -> a call answered (wake)"] = wake(http)
        versions = models.register_all(ladle.url, ladle.admin_token, models.make_data(), tmp)
        rf = versions[models.RF]
        with ladle.client() as http:
            times["create -> READY (first, environment built)"] = create_timed(http, "fp-rf", [entity(models.RF, rf)])
            one_pss = _settled(root)
            asleep = not registry_running(root)
            times["create -> READY (environment reused)" + (" (registry woken)" if asleep else "")] = \
                create_timed(http, "fp-rf-2", [entity(models.RF, rf)])
            two = report("ladle server, two endpoints on the same random-forest model (2 replicas)",
                         _settled_tree(root))
            further = two[1] - one_pss
            http.delete(f"{API}/fp-rf-2").raise_for_status()
            time.sleep(2.0)
        one = report("ladle server, one random-forest endpoint (1 replica, default spares, embedded registry)"
                     + ("" if registry_running(root) else " (registry already stopped!)"), tree(root))
        stop_s = wait_registry_stopped(root)
        rest = report(f"ladle server, one random-forest endpoint at rest (registry stopped: waited {stop_s:.0f} s "
                      "for it)", tree(root))
        serve = MlflowServe(models.download(models.RF, rf, tmp / "mlflow-model"), tmp / "mlflow-serve.log")
        times["mlflow models serve start -> /ping"] = serve.start()
        peer = report("mlflow models serve, same model", serve.proc.tree())
        print(f"\ntimings (s)   load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        targets = {"ladle server --demo -> demo READY": 8.0, "start -> /health": 1.5,
                   "create -> READY (environment reused)": 2.0}
        for k, v in times.items():
            t = targets.get(k)
            note = "" if t is None else f"   target <= {t:g} s: " + ("met" if v <= t else f"over by {v - t:.1f} s")
            print(f"  {k:<48}{v:>8.2f}{note}")
        print("\nratios (ladle / mlflow models serve, whole trees; target PSS <= 1.0x)")
        for i, what in ((1, "PSS"), (2, "USS"), (0, "RSS")):
            print(f"  {what}: ladle {one[i]:.0f} MiB / mlflow {peer[i]:.0f} MiB = {one[i] / max(peer[i], 1):.2f}x")
        r = rest[1] / max(peer[1], 1)
        print(f"  at rest (registry stopped), PSS: ladle {rest[1]:.0f} MiB / mlflow {peer[1]:.0f} MiB = {r:.2f}x "
              f"(target <= 1.0x: {'met' if r <= 1.0 else f'over by {rest[1] - peer[1]:.0f} MiB'}); "
              f"at rest, USS: {rest[2] / max(peer[2], 1):.2f}x, RSS: {rest[0] / max(peer[0], 1):.2f}x")
        print(f"  the cost: a call to the stopped registry waits {times['registry stopped -> a call answered (wake)']:.2f} s "
              f"(registry running: +{one[1] - rest[1]:.0f} MiB PSS)")
        print(f"  each further replica of the same model: +{further:.0f} MiB PSS (target <= 120 MiB: "
              f"{'met' if further <= 120 else f'over by {further - 120:.0f} MiB'})")
        for what, pss in (("registry never used", untouched), ("registry started", idle[1]),
                          ("registry stopped (at rest)", idle_rest[1])):
            print(f"  idle server, {what}: PSS {pss:.0f} MiB (target <= 150 MiB: "
                  f"{'met' if pss <= 150 else f'over by {pss - 150:.0f} MiB'})")
        return 0
    finally:
        if serve is not None:
            serve.stop()
        ladle.stop()
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


def _start(ladle: LadleProcess, times: dict[str, float]) -> None:
    """Start ladle (in a thread: `start` returns once the registry answers) while this thread
    polls /health and the control API; records the seconds to each."""
    marks: dict[str, float] = {}
    done: list[float] = []
    t0 = time.monotonic()
    th = threading.Thread(target=lambda: done.append(ladle.start()), daemon=True)
    th.start()
    with httpx.Client(headers=ladle.headers, timeout=1.0) as c:
        while th.is_alive() and len(marks) < 2:
            for key, path in (("health", "/health"), ("api", API)):
                if key not in marks:
                    try:
                        if c.get(ladle.url + path).status_code == 200:
                            marks[key] = time.monotonic() - t0
                    except httpx.HTTPError:
                        break
            time.sleep(0.02)
    th.join()
    if not done:
        raise RuntimeError("ladle server did not start:\n" + ladle.output(4000))
    times["start -> /health"] = marks.get("health", float("nan"))
    times["start -> control API answers"] = marks.get("api", float("nan"))
    times["start -> registry answers"] = time.monotonic() - t0


if __name__ == "__main__":
    raise SystemExit(main())
