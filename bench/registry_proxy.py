"""What registry permissions cost on MLflow's paths: the same calls through ladle's proxy as an
admin (passed through unread, streamed) and as an ordinary user who owns the objects (the call
authorized: its JSON read, a run's experiment looked up once, then remembered), in one run.

    .venv/bin/python -m bench.registry_proxy [--samples 300] [--artifact-mib 64] [--models 300]

Prints median and p99 per call and the ratio; results are printed, never committed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from ladle.testing.process import LadleProcess


def _pair(first, second, n: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """p50 and p99 (ms) of `first` and `second`, called alternately (neither gains from going
    second, a warm cache or a quiet moment)."""
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(n):
        for fn, out in ((first, samples[0]), (second, samples[1])):
            t = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t) * 1000)
    return _stats(samples[0]), _stats(samples[1])


def _stats(samples: list[float]) -> tuple[float, float]:
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--artifact-mib", type=int, default=64)
    ap.add_argument("--models", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ladle-bench-registry-") as tmp:
        srv = LadleProcess(Path(tmp) / "home", "dapi-bench-" + secrets.token_hex(8),
                           extra_env={"LADLE_FOUNDATION_ENDPOINTS": "false"})
        srv.start()
        try:
            run(srv, args, Path(tmp))
        finally:
            srv.stop()


def run(srv: LadleProcess, args: argparse.Namespace, tmp: Path) -> None:
    admin = httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {srv.admin_token}"}, timeout=120)
    tok = admin.post("/api/2.0/token-management/on-behalf-of/tokens", json={"user_name": "bench-owner"}).json()
    user = httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {tok['token_value']}"}, timeout=120)

    exp = user.post("/api/2.0/mlflow/experiments/create", json={"name": "bench-" + secrets.token_hex(4)}).json()["experiment_id"]
    run_id = user.post("/api/2.0/mlflow/runs/create", json={"experiment_id": exp}).json()["run"]["info"]["run_id"]
    blob = os.urandom(args.artifact_mib * 1024 * 1024)
    path = f"/api/2.0/mlflow-artifacts/artifacts/{exp}/{run_id}/artifacts/blob.bin"
    assert user.put(path, content=blob).status_code == 200
    for i in range(args.models):           # the admin's models; the user may read one in 30
        name = f"bench.m{i:04d}"
        admin.post("/api/2.0/mlflow/registered-models/create", json={"name": name})
        if i % 30 == 0:
            admin.patch(f"/api/2.0/permissions/registered-models/{name}",
                        json={"access_control_list": [{"user_name": "bench-owner", "permission_level": "CAN_READ"}]})

    rows = []
    for label, call in [
        ("runs/get", lambda c: c.get("/api/2.0/mlflow/runs/get", params={"run_id": run_id}).raise_for_status()),
        ("runs/log-metric", lambda c: c.post("/api/2.0/mlflow/runs/log-metric", json={
            "run_id": run_id, "key": "m", "value": 1.0, "timestamp": 0}).raise_for_status()),
        ("registered-models/search (100)", lambda c: c.get(
            "/api/2.0/mlflow/registered-models/search", params={"max_results": 100}).raise_for_status()),
    ]:
        rows.append((label, *_pair(lambda: call(admin), lambda: call(user), args.samples)))
    n = max(3, args.samples // 20)
    rows.append((f"artifact GET {args.artifact_mib} MiB",
                 *_pair(lambda: admin.get(path).raise_for_status(), lambda: user.get(path).raise_for_status(), n)))

    print(f"{'call':34} {'admin p50/p99 ms':>18} {'owner p50/p99 ms':>18} {'p50 ratio':>10}")
    for label, (ap50, ap99), (up50, up99) in rows:
        print(f"{label:34} {ap50:8.2f}/{ap99:<9.2f} {up50:8.2f}/{up99:<9.2f} {up50 / ap50:10.2f}")
    mib_s = args.artifact_mib / (rows[-1][2][0] / 1000)
    print(f"artifact download as owner: {mib_s:.0f} MiB/s (admin {args.artifact_mib / (rows[-1][1][0] / 1000):.0f} MiB/s)")
    print(f"the owner's search pages hold {len(user.get('/api/2.0/mlflow/registered-models/search', params={'max_results': 100}).json().get('registered_models', []))} "
          f"of the {len(range(0, args.models, 30))} models it may read, out of {args.models}")


if __name__ == "__main__":
    main()
