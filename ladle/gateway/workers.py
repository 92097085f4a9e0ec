"""Gateway worker processes: the request path on every core.

The server process keeps the control plane, the reconciler, the replicas, the counters and
the tables, and accepts connections like the others. Each worker (`python -m
ladle.app_worker`) inherits the server's listening socket, so the kernel hands each new
connection to whichever process accepts it first, and a socket pair to the server
(gateway/feed.py) over which:

- the server pushes the routing view on every publish, and the socket paths of each replica
  group's ready replicas whenever they change (a worker reaches replicas directly);
- a worker sends its metric observations, usage/payload rows and replica use in batches,
  asks to wake a group at zero, and asks for the current view when a request names an
  endpoint it does not serve.

Rate limits stay exact across the processes: without Redis their counters are one table in
shared memory that the server makes and every worker inherits (gateway/ratelimit_shm.py;
`gateway_limits = "server"` instead asks the server's counters over the link per request).

A worker answers invocations itself and relays every other request to the server over the
server's private Unix socket, so every write goes through one process. The server's
`barrier` keeps the other processes exact for the next request, wherever it lands: before
it answers a control-plane request it drains every worker's queued counts and rows (a
scrape or a usage read counts every request answered before it), and before a write's
answer leaves, every worker has reloaded what it caches (tokens, grants, secrets).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import pickle
import signal
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from starlette.types import ASGIApp, Receive, Scope, Send

from ladle.gateway.feed import Link, LinkClosed
from ladle.gateway.ratelimit import RateLimiter
from ladle.gateway.ratelimit_shm import SharedLimiter
from ladle.runtimes.base import ReplicaBackend
from ladle.schemas.replicas import GroupObs, GroupState
from ladle.schemas.routing import EndpointRoute
from ladle.telemetry.metrics import MetricsHub
from ladle.telemetry.tables import RowWriter

log = logging.getLogger("ladle.workers")
GROUPS_POLL_S = 0.05
ASK_TIMEOUT_S = 5.0
HOT_SUFFIXES = ("/invocations", "/chat/completions", "/completions", "/embeddings", "/responses")
Publish = Callable[[dict[str, EndpointRoute], Mapping[str, tuple[str, tuple[str, ...]]] | None], None]


class _Worker:
    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: asyncio.subprocess.Process | None = None
        self.link: Link | None = None
        self.ready = asyncio.Event()


class GatewayWorkers:
    def __init__(self, count: int, hello: dict[str, Any], listen: socket.socket, log_path: Path,
                 gateway: Any, metrics: MetricsHub, tables: RowWriter, limiter: RateLimiter,
                 backend: ReplicaBackend) -> None:
        self.count = count                  # worker processes (the server serves too)
        self.hello = hello                  # what a worker is built from (settings, registry)
        self.listen = listen
        self.log_path = log_path
        self.gateway, self.metrics, self.tables = gateway, metrics, tables
        self.limiter, self.backend = limiter, backend
        # a shared-memory table (the composition root's choice) is handed to every worker
        self.shared_limits = limiter if isinstance(limiter, SharedLimiter) else None
        self.workers = [_Worker(i) for i in range(count)]
        self._groups: dict[str, tuple[tuple[str, ...], bool]] = {}
        self._load: dict[int, dict[str, tuple[int, int]]] = {}   # worker -> group -> (in flight, waiting)
        self._tasks: list[asyncio.Task] = []
        self._stopping = False

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the workers in the background: the server serves meanwhile (a worker accepts
        connections only once it has the routing view)."""
        loop = asyncio.get_running_loop()
        for w in self.workers:
            self._tasks.append(loop.create_task(self._keep(w)))
        self._tasks.append(loop.create_task(self._watch_groups()))

    async def wait_ready(self, timeout: float) -> bool:
        """Whether every worker serves within `timeout` seconds."""
        try:
            await asyncio.wait_for(asyncio.gather(*(w.ready.wait() for w in self.workers)), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def stop(self) -> None:
        """Stop the workers; what they counted until they exit reaches this process."""
        self._stopping = True
        await self.drain()
        for w in self.workers:
            if w.proc is not None and w.proc.returncode is None:
                w.proc.send_signal(signal.SIGTERM)
        for w in self.workers:
            if w.proc is None:
                continue
            try:
                await asyncio.wait_for(w.proc.wait(), 15)
            except asyncio.TimeoutError:
                w.proc.kill()
                await w.proc.wait()
        keep = self._tasks[:len(self.workers)]
        if keep:
            await asyncio.wait(keep, timeout=5)     # each reads its worker's last notes
        for t in self._tasks:
            t.cancel()

    async def _keep(self, w: _Worker) -> None:
        """Run worker `w`; one that dies is started again (after a second, if it died young)."""
        while not self._stopping:
            began = time.monotonic()
            try:
                await self._run(w)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("gateway worker %d failed", w.index)
            if self._stopping:
                return
            log.warning("gateway worker %d exited (code %s); starting it again", w.index,
                        w.proc.returncode if w.proc else None)
            if time.monotonic() - began < 5:
                await asyncio.sleep(1)

    async def _run(self, w: _Worker) -> None:
        ours, theirs = socket.socketpair()
        limits_fd = self.shared_limits.fd if self.shared_limits is not None else None
        hello = pickle.dumps({**self.hello, "index": w.index, "limits_fd": limits_fd},
                             protocol=pickle.HIGHEST_PROTOCOL)
        ours.sendall(struct.pack("!I", len(hello)) + hello)
        fds = (self.listen.fileno(), theirs.fileno())
        with open(self.log_path, "ab") as out:
            w.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "ladle.app_worker", str(fds[0]), str(fds[1]),
                pass_fds=fds + ((limits_fd,) if limits_fd is not None else ()),
                stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                # out of the terminal's process group: Ctrl-C reaches the server, which stops
                # its workers itself (a worker interrupted with it was seen started again
                # during the shutdown); a worker whose server is gone exits on its own
                start_new_session=True)
        theirs.close()
        ours.setblocking(False)
        w.link = await Link.open(ours, lambda kind, payload: self._handle(w, kind, payload))
        try:
            await w.proc.wait()
            # the notes it sent before exiting are still to be read: up to its end of the link
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(w.link.closed.wait(), 5)
        finally:
            w.ready.clear()
            self._load.pop(w.index, None)
            await w.link.close()
            w.link = None

    # -- what the server pushes ------------------------------------------------------------
    def publishing(self, publish: Publish) -> Publish:
        """`publish`, then the same view to every worker."""
        def both(routes: dict[str, EndpointRoute],
                 not_ready: Mapping[str, tuple[str, tuple[str, ...]]] | None = None) -> None:
            publish(routes, not_ready)
            self._push_groups()
            for link in self._links():
                link.send("routes", (routes, dict(not_ready or {})))
        return both

    def _links(self, serving: bool = False) -> list[Link]:
        """The workers' links (`serving`: of those that accept requests already)."""
        return [w.link for w in self.workers if w.link is not None and (w.ready.is_set() or not serving)]

    def groups(self) -> dict[str, tuple[tuple[str, ...], bool]]:
        out = {}
        for key in list(self.backend.observe()):
            g = self.backend.group(key)
            if g is not None:
                out[key] = (tuple(str(getattr(r, "socket_path", "")) for r in g.replicas()),
                            g.state == GroupState.FAILED)
        return out

    def _push_groups(self) -> None:
        now = self.groups()
        if now != self._groups:
            self._groups = now
            for link in self._links():
                link.send("groups", now)

    async def _watch_groups(self) -> None:
        while True:
            await asyncio.sleep(GROUPS_POLL_S)
            try:
                self._push_groups()
            except Exception:
                log.exception("could not read the replica groups")

    async def _everyone(self, kind: str) -> None:
        links = self._links(serving=True)
        if not links:
            return
        got = await asyncio.gather(*(link.ask(kind, timeout=ASK_TIMEOUT_S) for link in links),
                                   return_exceptions=True)
        for g in got:
            if isinstance(g, Exception) and not isinstance(g, LinkClosed):
                log.warning("a gateway worker did not answer %r: %r", kind, g)

    async def drain(self) -> None:
        """Every worker's queued counts and rows are in this process's hub and writer."""
        await self._everyone("drain")

    async def reload(self) -> None:
        """Every worker has reloaded what it caches from the store."""
        await self._everyone("reload")

    # -- what a worker sends ---------------------------------------------------------------
    def _handle(self, w: _Worker, kind: str, payload: Any) -> Any:
        if kind == "events":
            self._apply(*payload, index=w.index)
        elif kind == "limit.acquire":
            return self.limiter.acquire(payload)
        elif kind == "limit.charge":
            return self.limiter.charge(*payload)
        elif kind == "wake":
            g = self.backend.group(payload)
            if g is not None:
                g.wake()
        elif kind == "view":
            return self._view(payload)
        elif kind == "ready":
            w.ready.set()
        else:
            raise ValueError(f"unknown note {kind!r}")
        return None

    async def _view(self, name: str | None) -> tuple:
        gw = self.gateway
        if name and gw.on_miss is not None and name not in gw.routes and name not in gw.not_ready:
            await gw.on_miss(name)     # made on another server (a shared database)?
        return gw.routes, dict(gw.not_ready), self.groups()

    def _apply(self, events: list[tuple], rows: list[tuple], touched: set[str],
               load: dict[str, tuple[int, int]], index: int = 0) -> None:
        for endpoint_id, kind, entity, status, ms in events:
            m = self.metrics.for_endpoint(endpoint_id)
            if kind == "observe":
                m.observe(entity, status, ms)
            elif kind == "rate_limited":
                m.rate_limited.labels(entity).inc()
            elif kind == "guardrail_blocked":
                m.guardrail_blocked.labels(entity).inc()
        for table, row, size in rows:
            self.tables.offer(table, row, size)
        for key in touched:
            g = self.backend.group(key)
            if g is not None:
                g.touch()
        if load:
            self._load.setdefault(index, {}).update(load)

    def observe(self) -> dict[str, GroupObs]:
        """The backend's view of its groups, with the workers' requests on them counted in
        (the autoscaler reads it)."""
        seen = self.backend.observe()
        for per_worker in self._load.values():
            for key, (in_flight, waiting) in per_worker.items():
                o = seen.get(key)
                if o is not None and (in_flight or waiting):
                    seen[key] = dataclasses.replace(o, in_flight=o.in_flight + in_flight,
                                                    waiting=o.waiting + waiting,
                                                    queued=o.queued + waiting)
        return seen

    def observed_backend(self) -> "ReplicaBackend":
        """The backend as the reconciler sees it: `observe` counts the workers' requests."""
        return _Observed(self.backend, self)  # type: ignore[return-value]

    # -- the server's side of exactness ----------------------------------------------------
    def barrier(self, app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            path = scope.get("path", "")
            if scope["type"] != "http" or path == "/health" or path.endswith(HOT_SUFFIXES):
                await app(scope, receive, send)
                return
            await self.drain()
            if scope["method"] in ("GET", "HEAD", "OPTIONS"):
                await app(scope, receive, send)
                return

            async def send_after_reload(message: dict) -> None:
                if message["type"] == "http.response.start":
                    await self.reload()
                await send(message)

            await app(scope, receive, send_after_reload)
        return wrapped


def bind_sockets(host: str, port: int, private: Path) -> list[socket.socket]:
    """The server's listening TCP socket (inheritable: the workers accept on it too) and its
    private Unix socket (mode 0600) that workers relay the control plane to."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    tcp = socket.socket(family, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((host, port))
    tcp.listen(2048)
    tcp.set_inheritable(True)
    private.unlink(missing_ok=True)
    uds = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        uds.bind(str(private))
    finally:
        os.umask(old)
    uds.listen(512)
    return [tcp, uds]


class _Observed:
    def __init__(self, backend: ReplicaBackend, workers: GatewayWorkers) -> None:
        self._backend, self._workers = backend, workers

    def observe(self) -> dict[str, GroupObs]:
        return self._workers.observe()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)
