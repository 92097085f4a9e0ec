"""What every benchmark part shares: the servers, the data, the results, and small helpers
for ladle's control plane (create an endpoint, wait until READY, read logs and metrics)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.load import LoadResult, run_async_load, run_wrk, wrk_script
from bench.models import Data
from bench.procs import MlflowServe
from bench.report import Results
from ladle.testing.process import LadleProcess

API = "/api/2.0/serving-endpoints"


@dataclass
class Ctx:
    console: Any
    args: Any
    tmp: Path
    ladle: LadleProcess
    http: httpx.Client
    data: Data
    res: Results
    versions: dict[str, str] = field(default_factory=dict)
    mlflow: MlflowServe | None = None
    wrk: str | None = None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.ladle.admin_token}"}

    def log(self, msg: str) -> None:
        self.console.log(msg)

    # -- load ---------------------------------------------------------------------------
    def load(self, url: str, body: bytes, headers: dict[str, str], concurrency: int,
             duration_s: float) -> LoadResult:
        if self.wrk:
            body_path = self.tmp / f"body-{hash(body) & 0xFFFFFFFF:x}.json"
            if not body_path.exists():
                body_path.write_bytes(body)
            script = self.tmp / f"wrk-{hash((body_path.name, tuple(headers.items()))) & 0xFFFFFFFF:x}.lua"
            script.write_text(wrk_script(body_path, {"Content-Type": "application/json", **headers}))
            return run_wrk(self.wrk, url, script, concurrency, duration_s)
        return run_async_load(url, body, {"Content-Type": "application/json", **headers}, concurrency,
                              duration_s)

    # -- ladle control plane ------------------------------------------------------------
    def get(self, name: str) -> dict:
        r = self.http.get(f"{API}/{name}")
        r.raise_for_status()
        return r.json()

    def create(self, name: str, entities: list[dict], timeout: float = 300.0) -> float:
        """POST the endpoint; seconds until READY and NOT_UPDATING."""
        t0 = time.perf_counter()
        r = self.http.post(API, json={"name": name, "config": {"served_entities": entities}})
        if r.status_code != 200:
            raise RuntimeError(f"create {name}: {r.status_code} {r.text}")
        self.wait_ready(name, timeout)
        return time.perf_counter() - t0

    def wait_ready(self, name: str, timeout: float, interval: float = 0.05) -> dict:
        deadline = time.perf_counter() + timeout
        while True:
            ep = self.get(name)
            st = ep.get("state", {})
            if st.get("config_update") == "UPDATE_FAILED":
                raise RuntimeError(f"endpoint {name} failed to update: {ep}\n{self.build_logs(ep)}")
            if st.get("ready") == "READY" and st.get("config_update") == "NOT_UPDATING":
                return ep
            if time.perf_counter() > deadline:
                raise RuntimeError(f"endpoint {name} not READY after {timeout:.0f}s: {st}")
            time.sleep(interval)

    def build_logs(self, ep: dict) -> str:
        out = []
        for e in served_entities(ep):
            r = self.http.get(f"{API}/{ep['name']}/served-models/{e['name']}/build-logs")
            if r.status_code == 200:
                out.append(r.json().get("logs", "")[-2000:])
        return "\n".join(out)

    def server_logs(self, name: str, served: str) -> str:
        r = self.http.get(f"{API}/{name}/served-models/{served}/logs")
        r.raise_for_status()
        return r.json().get("logs", "")

    def replica_pids(self, name: str) -> set[int]:
        """PIDs of the endpoint's replicas that are alive now (from "replica pid N ready" in
        its served entities' logs; workers may come from a warm pool, so their command
        line does not name the endpoint)."""
        pids: set[int] = set()
        for e in served_entities(self.get(name)):
            pids |= {int(x) for x in re.findall(r"replica pid (\d+) ready", self.server_logs(name, e["name"]))}
        return pids & {p.pid for p in self.ladle.replica_procs()}

    def replica_count(self, name: str, served: str) -> int | None:
        r = self.http.get(f"{API}/{name}/metrics")
        if r.status_code != 200:
            return None
        return replica_count_from_metrics(r.text, served)

    def invocations_url(self, name: str) -> str:
        return f"{self.ladle.url}/serving-endpoints/{name}/invocations"


def served_entities(ep: dict) -> list[dict]:
    cfg = ep.get("config") or ep.get("pending_config") or {}
    return cfg.get("served_entities") or cfg.get("served_models") or []


def entity(model: str, version: str, **extra: Any) -> dict[str, Any]:
    return {"entity_name": model, "entity_version": version, "workload_size": "Small",
            "scale_to_zero_enabled": False, **extra}


def replica_count_from_metrics(text: str, served: str) -> int | None:
    """`replica_count{served_entity="X"} 1.0` -> 1 (None when absent)."""
    m = re.search(r'^replica_count\{[^}]*served_entity="' + re.escape(served) + r'"[^}]*\}\s+(\S+)',
                  text, re.M)
    return int(float(m.group(1))) if m else None
