"""The embedded MLflow tracking server behind a credential: MLflow's own ASGI app, wrapped
so that every request must carry `Authorization: Bearer <internal token>`, served by uvicorn
in this (child) process on a loopback port. A replica worker, or anything else on the
machine, that finds the port gets 401; ladle's server (the proxy on its own port, the
registry look-ups, model downloads) holds the token.

Run as `python -m ladle.runtimes.mlflow_gate --backend-store-uri ... --artifacts-destination
... --port N` (or `--fd N`: a listening socket inherited from ladle's server), the token as the
first line on stdin (never in the environment or the command line, where another process could
read it), then made non-dumpable. With `--idle-s S` it exits 0 once it answered nothing for S
seconds (runtimes/idle_uvicorn.py); with `--ready-fd N` it writes `ready` there once it accepts.

What it sets up is what `mlflow server --backend-store-uri B --serve-artifacts
--artifacts-destination A` does, in one process instead of a CLI that spawns uvicorn: MLflow
offers no hook to wrap its app other than an installed `mlflow.app` plugin. That setup uses
MLflow's server internals, so it lives in ladle.entities.mlflow_adapter (`tracking_server_app`).
"""

from __future__ import annotations

import argparse
import gc
import hmac
import json
import os
import sys
import time


class Gate:
    """ASGI middleware: requests without the bearer token are answered 401. It counts the
    requests it lets through that are in flight and when the last one ended (`idle_for`)."""

    def __init__(self, app, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()
        self.in_flight = 0
        self.last = time.monotonic()

    def idle_for(self) -> float:
        """Seconds since the last request ended; 0 while one is in flight."""
        return 0.0 if self.in_flight else time.monotonic() - self.last

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] in ("http", "websocket"):
            got = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(got, self.expected):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                body = json.dumps({"error_code": "UNAUTHENTICATED",
                                   "message": "This registry answers only ladle's server"}).encode()
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
            self.in_flight += 1
            try:
                await self.app(scope, receive, send)
            finally:
                self.in_flight -= 1
                self.last = time.monotonic()
            return
        await self.app(scope, receive, send)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="ladle-mlflow-gate")
    ap.add_argument("--backend-store-uri", required=True)
    ap.add_argument("--artifacts-destination", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=None)
    ap.add_argument("--cache-dir", default=None,
                    help="a new SQLite backend is copied from a migrated empty database cached here")
    ap.add_argument("--fd", type=int, default=None,
                    help="a listening socket inherited from ladle's server (instead of --host/--port)")
    ap.add_argument("--ready-fd", type=int, default=None, help="written `ready` once connections are accepted")
    ap.add_argument("--idle-s", type=float, default=0.0,
                    help="with --fd: exit once no request came for this many seconds (0: never)")
    args = ap.parse_args(argv)
    if args.fd is None and args.port is None:
        ap.error("--port or --fd is required")
    # MLflow's imports are most of a (re)start: without the cyclic collector running through
    # them they take about a third less; what they made is then frozen out of its sight.
    gc.disable()
    token = sys.stdin.readline().strip()
    if not token:
        raise SystemExit("no token on stdin")
    from ladle.support.child_env import set_non_dumpable

    set_non_dumpable()

    if args.cache_dir and args.backend_store_uri.startswith("sqlite:///"):   # a new home: copy a migrated empty database
        from pathlib import Path

        from ladle.entities.mlflow_db_cache import seed

        seed(Path(args.backend_store_uri.removeprefix("sqlite:///")), Path(args.cache_dir))
    from ladle.entities.mlflow_adapter import tracking_server_app

    app = tracking_server_app(args.backend_store_uri, args.artifacts_destination)
    gc.freeze()
    gc.enable()
    if args.fd is not None:
        serve_inherited(Gate(app, token), args.fd, args.idle_s, args.ready_fd)
    else:
        import uvicorn

        uvicorn.run(Gate(app, token), host=args.host, port=args.port, log_level="warning",
                    timeout_graceful_shutdown=5)


def serve_inherited(gate: Gate, fd: int, idle_s: float, ready_fd: int | None) -> None:
    """Serve `gate` on the inherited listening socket `fd` until idle for `idle_s` (0: until
    stopped); `ready` is written to `ready_fd` once connections are accepted."""
    import socket

    from ladle.runtimes.idle_uvicorn import serve

    def ready() -> None:
        gate.last = time.monotonic()   # idle from now
        if ready_fd is not None:
            try:
                os.write(ready_fd, b"ready\n")
            finally:
                os.close(ready_fd)

    serve(gate, socket.socket(fileno=fd), gate.idle_for, idle_s, ready)


if __name__ == "__main__":
    main()
