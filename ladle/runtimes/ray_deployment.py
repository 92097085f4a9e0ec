"""The Ray Serve side of the Ray runtime: one Serve replica (an actor) runs one ladle worker.

`LadleReplica` is the deployment class. Its constructor prepares the model (or takes the
paths the ladle server prepared), starts `python -m ladle.replica.worker` with the model's
interpreter as a child process and connects to it with ladle's own client (LocalReplica),
so model loading, batching, streaming and cancellation are exactly those of the local
runtime. `__call__` streams: the first item is the head ({"status", "content_type"}), then
the body chunks as bytes.

Imported by Ray worker processes (and lazily by ladle.runtimes.ray); it never imports ray
itself, so it can be imported anywhere.
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Callable

from ladle.runtimes.base import GroupSpec, Prepared, Preparer, ReplicaGone, last_error_line
from ladle.runtimes.local_replica import LocalReplica

DEPLOYMENT_NAME = "LadleReplica"
START_FAILED = "Replica failed to start"


def direct_socket_dir(key: str) -> Path:
    """Where the workers of a group's Serve replicas on this machine listen, one socket per
    replica (`<actor pid>.sock`): a ladle server on the same machine sends to them directly
    instead of through the Serve handle (ray_group.DirectReplica)."""
    return Path(tempfile.gettempdir()) / "ladle-ray-sockets" / hashlib.sha256(key.encode()).hexdigest()[:16]


def _prctl():
    try:
        return ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()  # looked up before any fork: the child only calls it


def _die_with_parent() -> None:
    """In the forked child: get SIGTERM when the actor thread that started us dies (even by
    SIGKILL), so a worker never outlives its Serve replica."""
    _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class WorkerProcess(LocalReplica):
    """LocalReplica whose worker dies with the actor (PR_SET_PDEATHSIG on Linux)."""

    def _preexec(self):
        return _die_with_parent if _PRCTL is not None else None


@dataclass
class ReplicaOptions:
    start_timeout_s: float = 300.0
    logs_dir: str | None = None  # the ladle server's logs dir (shared or same machine): entity logs
    # the prepared env and the resolved environment_vars, sealed (ladle.runtimes.ray_seal)
    sealed_env: str | None = None


class _Logs:
    """Entity build/server logs under the server's logs dir when this node can write there,
    else a private temp dir (another node of the cluster). With `relay`, build lines go to
    the cluster's KV instead, where the owning server reads them into its build log
    (ray_serve.relay_build_line): a replica that prepares on its node needs no shared path
    for the server to show what it did."""

    def __init__(self, spec: GroupSpec, logs_dir: str | None, scratch: Path,
                 relay: "Callable[[str], None] | None" = None) -> None:
        self.build_path = scratch / "build.log"
        self.server_path = scratch / "server.log"
        self.relay = relay
        if logs_dir and relay is None:   # relaying: the server sees this node's lines through the KV
            try:
                from ladle.telemetry.logs import EntityLogs

                logs = EntityLogs(Path(logs_dir), spec.endpoint_id, spec.entity_name)
                self.build_path, self.server_path = logs.build_path, logs.server_path
            except OSError:
                pass

    def _write(self, path: Path, line: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with open(path, "a") as f:
            f.write(f"{stamp} {line}\n")

    def build(self, line: str) -> None:
        if self.relay is not None:
            try:
                self.relay(line)
                return
            except Exception:   # the KV is away: the line stays on this node
                pass
        self._write(self.build_path, line)

    def server(self, line: str) -> None:
        self._write(self.server_path, f"[ladle] {line}")

    def tail(self, n: int) -> str:
        try:
            with open(self.server_path, "rb") as f:
                f.seek(max(0, os.path.getsize(self.server_path) - 64 * 1024))
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
        except OSError:
            return ""


class LadleReplica:
    """The Ray Serve deployment class (wrapped with serve.deployment by the backend)."""

    async def __init__(self, spec: GroupSpec, prepared: Prepared | None, preparer: Preparer | None,
                       options: ReplicaOptions) -> None:
        self.spec = spec
        self.worker: WorkerProcess | None = None
        self.socket: Path | None = None
        self._closing = False
        self._watch: asyncio.Task | None = None
        self.scratch = Path(tempfile.mkdtemp(prefix="ladle-ray-"))
        relay, self._tail, self._tailing = None, None, None
        self.logs = _Logs(spec, options.logs_dir, self.scratch)
        if preparer is not None and prepared is None:   # preparing here: tell the owner how it goes
            from ladle.runtimes.ray_log_relay import LogRelay, ServerLogTail
            from ladle.runtimes.ray_serve import BuildRelay, app_name

            relay = BuildRelay(app_name(spec.key), node_tag())
            self.logs = _Logs(spec, options.logs_dir, self.scratch, relay)
            self._tail = ServerLogTail(self.logs.server_path, LogRelay(app_name(spec.key), node_tag()))
        try:
            if prepared is None:
                if preparer is None:
                    raise RuntimeError("neither prepared paths nor a preparer were given")
                self.logs.build(f"Preparing '{spec.entity_name}' on {_node()}")
                try:
                    prepared = await preparer(spec, self.logs.build)
                except Exception as e:
                    self.logs.build(f"ERROR: {e}")
                    raise RuntimeError(f"Build failed: {e}") from None
            if options.sealed_env:
                from ladle.runtimes.ray_seal import unseal

                opened = unseal(options.sealed_env)
                prepared = Prepared(prepared.python, prepared.model_dir,
                                    {**prepared.env, **opened["prepared"], **opened["env"]})
            sockets = direct_socket_dir(spec.key)
            sockets.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.socket = sockets / f"{os.getpid()}.sock"
            self.worker = WorkerProcess(prepared, self.socket, self.logs.server_path,
                                        spec.concurrency, dict(spec.env_vars), spec.kind)
            try:
                await self.worker.start(options.start_timeout_s)
            except Exception as e:
                await self.worker.kill()
                reason = last_error_line(self.logs.tail(20))
                self.logs.server(f"replica failed to start: {e}")
                await self._relay_logs_once()
                raise RuntimeError(f"{START_FAILED}: {e}. {reason}".rstrip(". ") + ".") from None
            self.logs.server(f"replica pid {self.worker.pid} ready (Ray Serve replica on {_node()})")
            self._watch = asyncio.get_running_loop().create_task(self._exit_with_worker())
            if self._tail is not None:
                self._tailing = asyncio.get_running_loop().create_task(self._relay_logs())
        except BaseException:
            self._clean()
            raise

    def _clean(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)
        if self.socket is not None:
            self.socket.unlink(missing_ok=True)

    async def __call__(self, meta: dict, body: bytes) -> AsyncIterator[dict | bytes]:
        if self.worker is None or not self.worker.alive:
            raise ReplicaGone("the replica's worker process is not running")
        reply = await self.worker.call(meta, body)
        try:
            yield {"status": reply.status, "content_type": reply.content_type}
            async for chunk in reply.chunks:
                yield chunk
        finally:  # closed early (the client went away): the worker stops generating now
            await reply.chunks.aclose()

    async def _exit_with_worker(self) -> None:
        """A replica whose worker died is dead: end the actor, so that Serve's routers stop
        sending to it at once (they drop a replica whose actor died) and the controller
        starts a new one, instead of answering ReplicaGone until a health check fails."""
        rc = await self.worker.wait()
        if self._closing:
            return
        self.logs.server(f"replica worker pid {self.worker.pid} exited with code {rc}; "
                         "ending this Ray Serve replica so that Serve replaces it")
        await asyncio.sleep(0.2)  # requests on the worker get their ReplicaGone first
        await self._relay_logs_once()
        self._clean()
        os._exit(1)

    async def _relay_logs(self) -> None:
        """Relay the runtime log's new lines to the cluster's KV (ray_log_relay) until the
        replica ends."""
        while True:
            await asyncio.sleep(self._tail.INTERVAL_S)
            await self._relay_logs_once()

    async def _relay_logs_once(self) -> None:
        if self._tail is None:
            return
        try:
            await asyncio.to_thread(self._tail.pump)
        except Exception:   # the KV is away: the lines go with the next pump
            pass

    async def info(self) -> dict:
        """Where this replica runs (for diagnostics and tests)."""
        return {"actor_pid": os.getpid(), "worker_pid": self.worker.pid if self.worker else None,
                "node": _node(), "in_flight": self.worker.in_flight if self.worker else 0}

    async def check_health(self) -> None:
        if self.worker is None or not self.worker.alive:
            rc = self.worker.proc.returncode if self.worker and self.worker.proc else None
            self.logs.server(f"replica worker exited with code {rc}; Ray Serve restarts the replica")
            raise RuntimeError(f"the ladle worker process exited with code {rc}")

    async def __del__(self) -> None:
        self._closing = True
        if self._tailing is not None:
            self._tailing.cancel()
        if self.worker is not None:
            await self.worker.load.drained(30.0)
            await self.worker.kill()
            self.worker = None
        await self._relay_logs_once()
        self._clean()


def _node() -> str:
    return node_label()


def node_tag() -> str:
    """A short name of this Ray node ("Ray node <id>"), else of this machine."""
    ray = sys.modules.get("ray")
    try:
        if ray is not None and ray.is_initialized():
            return f"Ray node {ray.get_runtime_context().get_node_id()[:12]}"
    except Exception:
        pass
    return os.uname().nodename


def node_label() -> str:
    """This machine's name and, inside a Ray worker, the Ray node's id and address (several
    Ray nodes may share a machine)."""
    name = os.uname().nodename
    ray = sys.modules.get("ray")   # never imported here: only inside a Ray worker
    try:
        if ray is not None and ray.is_initialized():
            ctx = ray.get_runtime_context()
            return f"{name} (Ray node {ctx.get_node_id()[:12]} at {ray.util.get_node_ip_address()})"
    except Exception:
        pass
    return name



NODE_DIR_ENV = "LADLE_RAY_NODE_DIR"


def node_dir() -> Path:
    """This Ray node's own cache of models and environments: LADLE_RAY_NODE_DIR in the
    node's environment (`LADLE_RAY_NODE_DIR=... ray start ...`), else a directory under the
    machine's temp dir."""
    return Path(os.environ.get(NODE_DIR_ENV) or Path(tempfile.gettempdir()) / "ladle-ray-node")


@dataclass
class RegistryPreparer:
    """A picklable preparer that runs inside each Serve replica (prepare_in_replica=True),
    on the node that runs the model: it downloads the model version from the registry into
    the node's own cache (`node_dir()`, or `models_dir`) and picks or builds its environment
    there (uv, cached per node by the hash of the model's requirements), as PyfuncPreparer
    does on a ladle server. It carries no credentials: the reconciler owner keeps a
    short-lived token that reads this one model version, and the registry's URL, sealed in
    the cluster's KV (ray_serve.read_access); so nothing here depends on a path the ladle
    server wrote."""

    models_dir: str | None = None
    envs_dir: str | None = None

    async def __call__(self, spec: GroupSpec, log) -> Prepared:
        from ladle.entities.prepare import PyfuncPreparer
        from ladle.entities.registry import Registry
        from ladle.runtimes.ray_serve import app_name, read_access

        if spec.kind != "mlflow_pyfunc":
            raise RuntimeError(f"entity kind '{spec.kind}' cannot be prepared on a Ray node")
        access = await asyncio.to_thread(read_access, app_name(spec.key))
        if access is None:
            raise RuntimeError("no registry access for this application in the cluster's KV (the "
                               "reconciler owner writes it before deploying)")
        models = Path(self.models_dir) if self.models_dir else node_dir() / "models"
        envs = Path(self.envs_dir) if self.envs_dir else node_dir() / "envs"
        models.mkdir(parents=True, exist_ok=True)
        envs.mkdir(parents=True, exist_ok=True)
        log(f"{node_label()} prepares '{spec.entity_name}' itself: model cache {models}, "
            f"environments {envs}, registry {access['url']} with this replica's own token (reads "
            f"model '{spec.model_name}' version {spec.model_version} only)")
        registry = Registry(access["url"], access["token"])
        try:
            return await PyfuncPreparer(registry, models, envs)(spec, log)
        finally:
            await registry.aclose()
