"""The Ray runtime's blocking calls into Ray and Ray Serve, and Serve's status as ladle reads it.

Everything that names a Ray API is here (ray is imported inside the functions: it is an
optional extra). The functions block; RayBackend runs them on its own threads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import socket
import threading
import time
from typing import Any

from ladle.runtimes.base import ReplicaGone
from ladle.support.retry import retrying_blocking

APP_PREFIX = "ladle-"
# Ray internal KV: app/<app> -> {"key", "digest"}; used/<app> -> wall time; access/<app> -> the
# registry URL and fetch token of replicas that prepare on their node, sealed (ray_seal)
KV_NAMESPACE = "ladle"
# Building a deployment's config registers modules with cloudpickle by value and then
# unregisters them (process-wide state), and two drivers' `serve.start` race for the
# controller's name: one of each at a time in this process.
_DEPLOY_LOCK = threading.Lock()
_CONNECT_LOCK = threading.Lock()


def app_name(key: str) -> str:
    """The Serve application name of a group key: `ladle-` + the key when it is name-safe,
    else a sanitised prefix and a digest of the key."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", key)
    if safe != key or len(safe) > 100:
        safe = f"{safe[:80]}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    return APP_PREFIX + safe


@dataclasses.dataclass
class AppView:
    """One Serve application as a poll saw it."""

    status: str
    message: str
    running: int
    target: int
    deployment_status: str
    deployment_message: str
    replicas: list[tuple[int | None, str | None, str]]  # (actor pid, node ip, state)


def parse_apps(details: dict) -> dict[str, AppView]:
    """ladle's applications from Serve's instance details (ServeInstanceDetails as a dict)."""
    from ladle.runtimes.ray_deployment import DEPLOYMENT_NAME

    out = {}
    for name, app in (details.get("applications") or {}).items():
        if not name.startswith(APP_PREFIX):
            continue
        dep = (app.get("deployments") or {}).get(DEPLOYMENT_NAME) or {}
        replicas = [(r.get("pid"), r.get("node_ip"), str(_enum(r.get("state"))))
                    for r in dep.get("replicas") or []]
        out[name] = AppView(
            status=str(_enum(app.get("status"))), message=app.get("message") or "",
            running=sum(1 for _, _, s in replicas if s == "RUNNING"),
            target=int(dep.get("target_num_replicas") or 0),
            deployment_status=str(_enum(dep.get("status"))), deployment_message=dep.get("message") or "",
            replicas=replicas,
        )
    return out


def _enum(v: Any) -> Any:
    return getattr(v, "value", v)


def failure_reason(view: AppView) -> str:
    """The line of Serve's failure message that says why (ladle's replica raises
    'Replica failed to start: ...' or 'Build failed: ...'); else Serve's own first line."""
    from ladle.runtimes.ray_deployment import START_FAILED

    text = "\n".join(m for m in (view.deployment_message, view.message) if m)
    for line in reversed(text.splitlines()):  # the exception's line, after the traceback's source
        for marker in (START_FAILED, "Build failed:"):
            i = line.find(marker)
            if i >= 0:
                return line[i:].strip()[:1000]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errs = [ln for ln in lines if "Error" in ln or "Exception" in ln]
    head = lines[0] if lines else "The Ray Serve deployment failed"
    return (head + (f" {errs[-1]}" if errs and errs[-1] != head else ""))[:1000]


def translate(e: BaseException, gone: str) -> BaseException:
    """Ray's errors for a replica that went away become ReplicaGone (the pool retries)."""
    if isinstance(e, (ReplicaGone,)) or not isinstance(e, Exception):
        return e
    from ray import exceptions as rx
    from ray.serve import exceptions as sx

    cause = getattr(e, "cause", None)
    if isinstance(e, rx.RayTaskError) and isinstance(cause, ReplicaGone):
        return ReplicaGone(str(cause))
    gone_types = (rx.RayActorError, sx.ReplicaUnavailableError, sx.DeploymentUnavailableError,
                  sx.RequestCancelledError, StopAsyncIteration)
    if isinstance(e, gone_types) or isinstance(cause, gone_types):
        return ReplicaGone(gone)
    return e


# -- connection -----------------------------------------------------------------------------

def connect(address: str | None, init_kwargs: dict) -> bool:
    """Connect this process's Ray driver (unless connected) and make sure Serve runs.
    Returns whether this call started the driver (then `disconnect` is ours to call)."""
    import ray
    from ray import serve

    owns = False
    with _CONNECT_LOCK:
        if not ray.is_initialized():
            ray.init(address=address or None, **{"log_to_driver": False, **init_kwargs})
            owns = True
        # Proxies only matter for Serve's own HTTP ingress; ladle calls through handles. An
        # already running Serve keeps its settings; another server starting Serve at the same
        # moment makes ours find its controller on the next try.
        # "... SERVE_CONTROLLER_ACTOR ... is already taken": another server is starting Serve
        retrying_blocking(lambda e: isinstance(e, ValueError) and ("already taken" in str(e) or
                                                                   "already exists" in str(e)),
                          attempts=5, delay=0.5)(serve.start, proxy_location="Disabled")
    return owns


def disconnect() -> None:
    import ray

    ray.shutdown()


# -- applications ---------------------------------------------------------------------------

def adopt(app: str, digest: str, target: int) -> bool:
    """Keep the application already there when it runs the same entity (its digest in the
    KV matches): scaled to `target`, its replicas keep serving. Waits out a deletion."""
    current = read_apps().get(app)
    if current is not None and current.status == "DELETING":
        deadline = time.monotonic() + 60.0
        while current is not None and time.monotonic() < deadline:
            time.sleep(0.2)
            current = read_apps().get(app)
        return False
    meta = kv_get(f"app/{app}")
    if current is None or not meta or current.status == "DEPLOY_FAILED":
        return False
    try:
        same = json.loads(meta).get("digest") == digest
    except ValueError:
        return False
    if same and current.target != target:
        scale(app, target)
    return same


def deploy(app: str, key: str, target: int, args: dict) -> str:
    """Deploy the application, or adopt the one already there when it runs the same thing
    (a restarted or new owner: its replicas keep serving). Returns which."""
    from ray import serve
    from ray.serve.api import RunTarget

    from ladle.runtimes.ray_deployment import DEPLOYMENT_NAME, LadleReplica

    if adopt(app, args["digest"], target):
        return "adopted"
    with _DEPLOY_LOCK:
        dep = serve.deployment(name=DEPLOYMENT_NAME, num_replicas=target, **args["deployment"])(LadleReplica)
        bound = dep.bind(*args["init"])
        # external_scaler_enabled: a new target is a count-only change (see `scale`)
        serve.run_many([RunTarget(bound, name=app, route_prefix=None, external_scaler_enabled=True)],
                       wait_for_ingress_deployment_creation=False, wait_for_applications_running=False)
    kv_put(f"app/{app}", json.dumps({"key": key, "digest": args["digest"]}))
    return "deployed"


def scale(app: str, target: int) -> None:
    """Set the replica count without a rolling restart: the controller call that Ray Serve's
    external-scaler REST API (POST /api/v1/applications/{app}/deployments/{name}/scale) makes,
    made directly so that no dashboard is needed."""
    import ray
    from ray.serve._private.common import DeploymentID
    from ray.serve.context import _get_global_client

    from ladle.runtimes.ray_deployment import DEPLOYMENT_NAME

    controller = _get_global_client()._controller
    ray.get(controller.update_deployment_replicas.remote(
        DeploymentID(name=DEPLOYMENT_NAME, app_name=app), target))


def delete(app: str) -> None:
    from ray import serve

    serve.delete(app, _blocking=False)
    for k in (f"app/{app}", f"used/{app}", f"access/{app}"):
        kv_del(k)
    from ray.experimental.internal_kv import _internal_kv_del

    for prefix in (f"build/{app}/", f"logs/{app}/"):
        _internal_kv_del(prefix, del_by_prefix=True, namespace=KV_NAMESPACE)


def make_handle(app: str):
    """The application's DeploymentHandle (no controller round trip)."""
    from ray import serve

    from ladle.runtimes.ray_deployment import DEPLOYMENT_NAME

    return serve.get_deployment_handle(DEPLOYMENT_NAME, app_name=app, _check_exists=False,
                                       _record_telemetry=False)


def read_apps() -> dict[str, AppView]:
    from ray.serve.context import _get_global_client

    client = _get_global_client(raise_if_no_controller_running=False)
    if client is None:
        return {}
    return parse_apps(client.get_serve_details() or {})


def poll(used: dict[str, float], watch: list[str]) -> tuple[dict[str, AppView], dict[str, float]]:
    """Write this server's last uses, read every ladle application's status and the last
    use (by any server) of the watched ones."""
    for app, wall in used.items():
        kv_put(f"used/{app}", repr(wall))
    apps = read_apps()
    shared = {}
    for app in watch:
        raw = kv_get(f"used/{app}")
        if raw:
            try:
                shared[app] = float(raw)
            except ValueError:
                pass
    return apps, shared


# -- Ray's internal KV (shared by every driver of the cluster) ------------------------------

class BuildRelay:
    """In a replica that prepares on its node: its build lines, under one KV key of its own
    (`build/<app>/<node>-<pid>`, the last MAX_RELAYED lines), for the owner to read. Called
    in the replica's constructor, before it serves: a short blocking KV write per line."""

    MAX_RELAYED = 500

    def __init__(self, app: str, node: str) -> None:
        import uuid

        self.key = f"build/{app}/{uuid.uuid4().hex[:16]}"
        self.node = node
        self.lines: list[str] = []
        self.count = 0

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        self.count += 1
        del self.lines[:-self.MAX_RELAYED]
        kv_put(self.key, json.dumps({"node": self.node, "lines": self.lines, "count": self.count}))


def read_build_lines(app: str) -> dict[str, tuple[str, int, list[str]]]:
    """Replica key -> (node, lines written in all, the last of them) relayed by the
    application's replicas."""
    return read_windows(f"build/{app}/", json.loads)


def read_windows(prefix: str, decode: Any) -> dict[str, tuple[str, int, list[str]]]:
    """The relayed line windows under a KV `prefix` (blocking)."""
    from ray.experimental.internal_kv import _internal_kv_list

    keys = _internal_kv_list(prefix, namespace=KV_NAMESPACE) or []
    return parse_windows([k.decode() if isinstance(k, bytes) else str(k) for k in keys], kv_get, decode)


def parse_windows(keys: list[str], get: Any, decode: Any) -> dict[str, tuple[str, int, list[str]]]:
    """Key -> (node, lines written in all, the last of them) of each window `get(key)` holds;
    one that `decode` cannot read (garbled, or sealed with another key) is skipped."""
    out = {}
    for key in keys:
        got = get(key)
        try:
            data = decode(got) if got else None
        except (RuntimeError, ValueError):
            data = None
        if isinstance(data, dict) and isinstance(data.get("lines"), list):
            lines = [str(x) for x in data["lines"]]
            count = data.get("count") if isinstance(data.get("count"), int) else len(lines)
            out[key] = (str(data.get("node") or ""), count, lines)
    return out


def write_access(app: str, url: str, token: str) -> None:
    """Where and how the application's replicas fetch their model (sealed: the KV is open to
    every process of the cluster)."""
    from ladle.runtimes.ray_seal import seal, seal_key

    kv_put(f"access/{app}", seal({"url": url, "token": token}, seal_key()))


def read_access(app: str) -> dict | None:
    """In a replica: {"url", "token"} the owner wrote for its application, or None."""
    from ladle.runtimes.ray_seal import unseal

    raw = kv_get(f"access/{app}")
    return unseal(raw) if raw else None


def kv_get(key: str) -> str | None:
    from ray.experimental.internal_kv import _internal_kv_get

    v = _internal_kv_get(key, namespace=KV_NAMESPACE)
    return v.decode() if v else None


def kv_put(key: str, value: str) -> None:
    from ray.experimental.internal_kv import _internal_kv_put

    _internal_kv_put(key, value, overwrite=True, namespace=KV_NAMESPACE)


def kv_del(key: str) -> None:
    from ray.experimental.internal_kv import _internal_kv_del

    _internal_kv_del(key, namespace=KV_NAMESPACE)


_IPS: set[str] | None = None


def local_ips() -> set[str]:
    global _IPS
    if _IPS is None:
        import psutil

        _IPS = {a.address for addrs in psutil.net_if_addrs().values() for a in addrs
                if a.family in (socket.AF_INET, socket.AF_INET6)}
    return _IPS
