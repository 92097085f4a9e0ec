"""A gateway worker process: the composition root of the request path that runs beside the
server on another core (gateway/workers.py starts it; `python -m ladle.app_worker
LISTEN_FD LINK_FD`).

It answers invocations (the Databricks, OpenAI-compatible and Responses routes) itself:
authentication from the store (read only), the routing view and the replicas' sockets
pushed by the server, external models called directly, counts and rows through the server
(gateway/follower.py), rate limits in the server's shared-memory table (or Redis). Every other request is relayed to the server
(api/server_relay.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import pickle
import signal
import socket
import struct
import sys
from typing import Any, AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Mount, Route

from ladle.api import dataplane, openai_routes, responses_routes, server_relay
from ladle.api.errors import api_error, client_gone, http_error, internal_error
from ladle.config import Settings
from ladle.control.groups import GroupService
from ladle.control.oauth_auth import Authenticator
from ladle.control.oauth_keys import SigningKeys
from ladle.control.permissions import PermissionService
from ladle.control.secrets import SecretStore
from ladle.control.store import DbTimeouts, Store
from ladle.control.sync import StateSync
from ladle.control.tokens import TokenService
from ladle.entities.signature import model_task
from ladle.gateway.auth import AuthMiddleware
from ladle.gateway.external import ExternalCaller
from ladle.gateway.feed import Link
from ladle.gateway.follower import (FollowerBackend, Relay, RelayHub, RelayWriter, RemoteLimiter,
                                    WorkerGateway)
from ladle.gateway.pool import ReplicaPool
from ladle.schemas.errors import ApiError
from ladle.support.child_env import set_non_dumpable
from ladle.telemetry.otel import Otel
from ladle.telemetry.recorder import Recorder

log = logging.getLogger("ladle.worker")


def build_worker_app(settings: Settings, hello: dict[str, Any], link_sock: socket.socket) -> Any:
    store = Store(settings.db_url, DbTimeouts(settings.db_connect_timeout_s, settings.db_statement_timeout_s,
                                              settings.db_pool_timeout_s))
    groups = GroupService(store)
    tokens_svc = TokenService(store, groups.groups_of)
    perms = PermissionService(store)
    secrets = SecretStore(store, settings.home, settings.secret_key)
    signing_keys = SigningKeys(store, secrets.seal, secrets.unseal)
    signing_keys.reload()
    authenticator = Authenticator(tokens_svc, signing_keys, store, groups.groups_of)
    reloads = [tokens_svc.reload, authenticator.reload, perms.reload, groups.reload, secrets.reload,
               signing_keys.reload]
    external = ExternalCaller(secrets.resolve, settings.request_timeout_s)
    relay = Relay(None)  # type: ignore[arg-type]   # the link opens with the event loop
    backend = FollowerBackend(relay, None)  # type: ignore[arg-type]
    limiter: Any
    if settings.redis_url:
        from ladle.gateway.ratelimit_redis import RedisLimiter

        limiter = RedisLimiter.from_url(settings.redis_url)
    elif hello.get("limits_fd") is not None:      # the server's counters, in shared memory
        from ladle.gateway.ratelimit_shm import SharedLimiter

        limiter = SharedLimiter(hello["limits_fd"])
    else:
        limiter = RemoteLimiter(None)  # type: ignore[arg-type]
    mlflow_url, mlflow_token = hello["mlflow"]

    async def on_miss(name: str) -> None:
        """A name this worker does not serve: the server's current view, in case it is new."""
        routes, not_ready, grps = await link_ref[0].ask("view", name, timeout=5)
        backend.update(grps)
        gateway.publish(routes, not_ready)

    gateway = WorkerGateway(ReplicaPool(backend, settings.request_timeout_s, settings.replica_start_timeout_s),
                      RelayHub(relay), perms.level, settings.max_payload_bytes,  # type: ignore[arg-type]
                      limiter=limiter, recorder=Recorder(RelayWriter(relay), "ladle", settings.workspace_id),  # type: ignore[arg-type]
                      external=external, on_miss=on_miss, otel=Otel(mlflow=(mlflow_url, mlflow_token)))
    link_ref: list[Link] = []
    sync = StateSync(store, settings.sync_interval_s, reloads)

    async def reload() -> bool:
        for fn in reloads:
            await store.call(fn)
        return True

    def handle(kind: str, payload: Any) -> Any:
        if kind == "routes":
            gateway.publish(*payload)
        elif kind == "groups":
            backend.update(payload)
        elif kind == "drain":
            relay.flush()
            return True
        elif kind == "reload":
            relay.flush()
            return reload()
        else:
            raise ValueError(f"unknown note {kind!r}")
        return None

    http = server_relay.client(hello["server_socket"])

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        link_sock.setblocking(False)
        link = await Link.open(link_sock, handle)
        link_ref.append(link)
        relay.link = backend.link = link
        if isinstance(limiter, RemoteLimiter):
            limiter.link = link
        routes, not_ready, grps = await link.ask("view", timeout=30)
        backend.update(grps)
        gateway.publish(routes, not_ready)
        loop = asyncio.get_running_loop()
        background = [loop.create_task(sync.run()), loop.create_task(_exit_with(link))]
        await reload()      # a write since this worker loaded its caches
        # what start-up built lives as long as the worker: out of the collector's full passes,
        # which over it took ~50 ms each (the worker's p99 at c=32 on two cores)
        gc.collect()
        gc.freeze()
        link.send("ready")
        try:
            yield
        finally:
            for t in background:
                t.cancel()
            relay.flush()
            await external.aclose()
            await limiter.aclose()
            await http.aclose()
            if gateway.otel is not None:
                await asyncio.to_thread(gateway.otel.shutdown)
            store.close()

    responses = responses_routes.ResponsesFront(
        gateway, lambda name, version: model_task(settings.models_dir, name, version))
    routes: list[Any] = [   # the invocations first: each request is matched in this order
        *dataplane.routes(None, responses.invoke),  # type: ignore[arg-type]   # invoke given: no services
        *openai_routes.routes(gateway), *responses.routes(),
        Mount("", app=server_relay.ServerRelay(http, hello["server_socket"])),
    ]
    handlers = {ApiError: api_error, HTTPException: http_error, ClientDisconnect: client_gone,
                Exception: internal_error}
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)  # type: ignore[arg-type]
    return AuthMiddleware(dataplane.HotPath(app, responses.invoke, handlers), authenticator.authenticate)


async def _exit_with(link: Link) -> None:
    """The server is gone (its end of the link closed): stop as if told to."""
    await link.closed.wait()
    os.kill(os.getpid(), signal.SIGTERM)


def _read_hello(sock: socket.socket) -> dict[str, Any]:
    def exactly(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            got = sock.recv(n - len(buf))
            if not got:
                raise SystemExit("ladle worker: the server closed the link before saying hello")
            buf += got
        return buf

    return pickle.loads(exactly(struct.unpack("!I", exactly(4))[0]))


def main(argv: list[str]) -> None:
    import uvicorn

    from ladle.support.bad_request import http_protocol

    set_non_dumpable()    # holds the settings (the secret key): closed to same-uid processes
    listen_fd, link_fd = int(argv[1]), int(argv[2])
    link_sock = socket.socket(fileno=link_fd)
    hello = _read_hello(link_sock)
    settings: Settings = hello["settings"]
    log_level = hello.get("log_level", "warning")
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.WARNING),
                        format=f"%(asctime)s %(levelname)s %(name)s[w{hello.get('index', 0)}]: %(message)s")
    gc.disable()        # the imports and the build: no collector passes over what lives on
    try:
        app = build_worker_app(settings, hello, link_sock)
    finally:
        gc.enable()
    listen = socket.socket(fileno=listen_fd)
    config = uvicorn.Config(app, log_level=log_level, access_log=False, http=http_protocol(),
                            timeout_graceful_shutdown=30, lifespan="on")
    uvicorn.Server(config).run(sockets=[listen])


if __name__ == "__main__":
    main(sys.argv)
