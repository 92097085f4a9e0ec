"""What MLflow Tracing costs in a replica worker: one request at a time over the worker's socket,
for a plain entity, an entity whose predict opens MLflow spans (untraced: MLflow keeps them in
memory and drops them), and the same entity traced (its spans collected and sent back in a SPANS
frame). Prints ms per request.

    .venv/bin/python -m bench.replica_tracing [--requests 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time


class Plain:
    streams = False

    def predict(self, meta, body, cancel=None):
        return 200, "application/json", b'{"out": 1}'


class Spans:
    streams = False

    def predict(self, meta, body, cancel=None):
        import mlflow

        @mlflow.trace(name="agent.predict")
        def answer(text):
            with mlflow.start_span("lookup") as sp:
                sp.set_attribute("query", text)
            return "agent: " + text

        return 200, "application/json", json.dumps({"out": answer(json.loads(body)["text"])}).encode()


async def per_request_ms(entity, traced: bool, n: int, sock: str) -> float:
    from ladle.replica import protocol as p
    from ladle.replica.worker import Worker

    server = await asyncio.start_unix_server(Worker(entity, 2).serve_connection, path=sock)
    reader, writer = await asyncio.open_unix_connection(sock)
    body = json.dumps({"text": "hi"}).encode()
    t0 = 0.0
    for i in range(n + 20):                      # 20 to warm up
        if i == 20:
            t0 = time.perf_counter()
        meta = {"traceparent": f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"} if traced else {}
        writer.write(p.frame(i + 1, p.REQUEST, p.request_payload(meta, body)))
        while (await p.read_frame(reader))[1] != p.END:
            pass
    ms = (time.perf_counter() - t0) / n * 1000
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    os.unlink(sock)
    return ms


async def main(n: int) -> None:
    from ladle.replica import tracing

    os.environ.pop("MLFLOW_TRACKING_URI", None)
    tracing.prepare()                            # as a replica does at model load
    Spans().predict({}, b'{"text": "warm"}')     # MLflow's imports, outside the timings
    with tempfile.TemporaryDirectory() as d:
        sock = os.path.join(d, "w.sock")
        for label, entity, traced in (("plain entity", Plain(), False),
                                      ("MLflow spans, untraced", Spans(), False),
                                      ("MLflow spans, traced", Spans(), True)):
            print(f"{label:24} {await per_request_ms(entity, traced, n, sock):.3f} ms/request")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=500)
    asyncio.run(main(ap.parse_args().requests))
