"""A stand-in for the embedded registry's child (ladle.runtimes.mlflow_gate) that starts in a
fraction of a second: the same gate, idle stop and inherited socket, around a tiny app that
answers `{"pid": <its pid>}` (after `?hold=S` seconds). `--fail` exits 1 before accepting.

    python -m tests.integration.registry_child --fd N --ready-fd N --idle-s S [...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from ladle.runtimes.mlflow_gate import Gate, serve_inherited


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    hold = dict(p.split("=", 1) for p in scope["query_string"].decode().split("&") if "=" in p).get("hold")
    if hold:
        await asyncio.sleep(float(hold))
    body = json.dumps({"pid": os.getpid()}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fd", type=int, required=True)
    ap.add_argument("--ready-fd", type=int, default=None)
    ap.add_argument("--idle-s", type=float, default=0.0)
    ap.add_argument("--fail", action="store_true")
    args, _ = ap.parse_known_args()
    token = sys.stdin.readline().strip()
    if args.fail:
        raise SystemExit(1)
    serve_inherited(Gate(app, token), args.fd, args.idle_s, args.ready_fd)


if __name__ == "__main__":
    main()
