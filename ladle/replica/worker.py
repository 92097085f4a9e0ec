"""A replica worker process: loads one served entity and answers frames on a Unix socket.

ladle's server starts it as `python -m ladle.replica.worker --job` (or `--standby`, a
pre-warmed spare) with a control socket as fd 0: the worker first confines itself
(ladle/replica/confine.py), then receives its job, log and listening socket
(ladle/runtimes/worker_launch.py). By hand: `--model-dir DIR --socket PATH --concurrency N`.
It imports only the stdlib, the protocol and the entity kind; it must start in a model's
own environment too.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextvars
import gc
import json
import os
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ladle.replica import protocol as p
from ladle.replica import tracing
from ladle.replica.batching import Batcher, batch_settings


class Worker:
    def __init__(self, entity, concurrency: int) -> None:
        self.entity = entity
        self.pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="predict")
        self.tasks: dict[tuple[int, int], asyncio.Task] = {}
        self.batcher: Batcher | None = None
        size, wait_s = batch_settings()
        if size > 1 and hasattr(entity, "predict_batch"):
            lanes = int(os.environ.get("LADLE_BATCH_LANES", "1"))
            self.batcher = Batcher(entity.predict_batch, self.pool, size, wait_s, lanes)

    async def serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = id(writer)
        try:
            while True:
                req_id, kind, payload = await p.read_frame(reader)
                if kind == p.REQUEST:
                    t = asyncio.get_running_loop().create_task(self.handle(req_id, payload, writer))
                    self.tasks[(conn, req_id)] = t
                    t.add_done_callback(lambda _t, k=(conn, req_id): self.tasks.pop(k, None))
                elif kind == p.CANCEL:
                    t = self.tasks.get((conn, req_id))
                    if t:
                        t.cancel()
                elif kind == p.PING:
                    writer.write(p.frame(req_id, p.PONG, json.dumps(
                        {"version": p.VERSION, "pid": os.getpid()}).encode()))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for (c, rid), t in list(self.tasks.items()):
                if c == conn:
                    t.cancel()
            writer.close()

    async def handle(self, req_id: int, payload: bytes, writer: asyncio.StreamWriter) -> None:
        """Answer one request. An entity returns bytes (a unary answer) or an iterator of
        byte chunks (a stream, e.g. SSE): HEAD, one CHUNK per item, END. A CANCEL frame (the
        client went away) cancels this task; `cancel` tells the entity to stop generating."""
        meta, body = p.split_request(payload)
        loop = asyncio.get_running_loop()
        cancel = threading.Event()
        it = None
        # one context for the whole stream: a generator that sets context variables
        # (MLflow's prediction context) must resume in the context where it set them
        ctx = contextvars.copy_context()
        # a traced request: the model's MLflow spans go back with the answer (replica/tracing.py)
        traced = tracing.Traced(meta["traceparent"]) if tracing.sampled(meta.get("traceparent")) else None
        try:
            if traced is not None:
                status, ctype, out = await loop.run_in_executor(
                    self.pool, ctx.run, tracing.predict, self.entity, traced, meta, body, cancel)
            elif self.batcher is not None and not getattr(self.entity, "streams", False):
                status, ctype, out = await self.batcher.submit(meta, body)
            else:
                status, ctype, out = await loop.run_in_executor(
                    self.pool, self.entity.predict, meta, body, cancel)
            if not isinstance(out, (bytes, bytearray)):
                it = iter(out)
                first = await loop.run_in_executor(self.pool, ctx.run, next, it, _DONE)
        except asyncio.CancelledError:
            cancel.set()
            _close_later(self.pool, it, ctx, traced)
            raise
        except Exception as e:  # an entity bug or a refused request: report it, keep serving
            status, ctype, out = _failure(e)
            it = None
        if it is None:
            spans = await tracing.spans(loop, self.pool, ctx, traced)
            if not writer.is_closing():
                writer.write(p.unary_reply(req_id, status, ctype, out, spans))
            return
        try:
            writer.write(p.frame(req_id, p.HEAD, json.dumps({"status": status, "content_type": ctype}).encode()))
            chunk = first
            while chunk is not _DONE and not writer.is_closing():
                writer.write(p.frame(req_id, p.CHUNK, chunk))
                await writer.drain()
                try:
                    chunk = await loop.run_in_executor(self.pool, ctx.run, next, it, _DONE)
                except Exception as e:  # mid-stream failure: the client gets an error event
                    _, _, err = _failure(e)
                    writer.write(p.frame(req_id, p.CHUNK, b"data: " + err + b"\n\n"))
                    break
            spans = await tracing.spans(loop, self.pool, ctx, traced, it)
            if spans and not writer.is_closing():
                writer.write(p.frame(req_id, p.SPANS, spans))
            if not writer.is_closing():
                writer.write(p.frame(req_id, p.END))
        except ConnectionError:
            cancel.set()
            _close_later(self.pool, it, ctx, traced)
        except asyncio.CancelledError:
            cancel.set()
            _close_later(self.pool, it, ctx, traced)
            raise


_DONE = object()


def _failure(e: Exception) -> tuple[int, str, bytes]:
    status = getattr(e, "status", None)
    if isinstance(status, int) and hasattr(e, "error_code"):  # ladle.schemas.errors.ApiError
        return status, "application/json", json.dumps(
            {"error_code": e.error_code, "message": e.message}).encode()
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} prediction failed: {e!r}", file=sys.stderr, flush=True)
    return 500, "application/json", json.dumps(
        {"error_code": "INTERNAL_ERROR", "message": f"{type(e).__name__}: {e}"}).encode()


def _close_later(pool: ThreadPoolExecutor, it, ctx: contextvars.Context | None = None,
                 traced: "tracing.Traced | None" = None) -> None:
    """Close a cancelled stream's generator (its finally blocks run) once no thread is in it;
    then leave its tracing context (its spans are not sent: nobody waits for them)."""
    close = getattr(it, "close", None)
    if close is None and traced is None:
        return

    def run() -> None:
        for _ in range(200 if close is not None else 0):
            try:
                ctx.run(close) if ctx is not None else close()
                break
            except (ValueError, RuntimeError):  # a next() is still running in it
                time.sleep(0.05)
        if traced is not None and ctx is not None:
            ctx.run(traced.leave)

    pool.submit(run)


def _load_entity(kind: str, model_dir: str):
    if kind == "mlflow_pyfunc":
        from ladle.entities.mlflow_pyfunc import PyfuncEntity

        return PyfuncEntity.load(model_dir)
    if kind == "foundation":
        from ladle.entities.foundation import FoundationEntity

        return FoundationEntity.load(model_dir)
    raise SystemExit(f"unknown entity kind {kind!r}")


async def amain(args: argparse.Namespace, ctl: "Control | None" = None) -> None:
    t0 = time.time()
    print(f"loading {args.kind} model from {args.model_dir}", flush=True)
    if args.kind == "mlflow_pyfunc":
        tracing.prepare()           # before the model's code, which may use MLflow Tracing
    entity = _load_entity(args.kind, args.model_dir)
    worker = Worker(entity, args.concurrency)
    # Everything loaded so far (libraries, the model) lives as long as the process: keep it
    # out of the collector's full passes, which would otherwise walk it all and stall answers.
    gc.collect()
    gc.freeze()
    listen = getattr(args, "listen", None)
    if listen is not None:  # a socket the server made (in a directory this worker cannot see)
        server = await asyncio.start_unix_server(worker.serve_connection, sock=listen)
    else:
        if os.path.exists(args.socket):
            os.unlink(args.socket)
        server = await asyncio.start_unix_server(worker.serve_connection, path=args.socket)
    print(f"model loaded in {time.time() - t0:.2f}s; listening on {args.socket} "
          f"(concurrency {args.concurrency}; {gc.get_freeze_count()} objects frozen)", flush=True)
    mode = (f"adaptive batching up to {worker.batcher.max_size}" if worker.batcher else "no batching")
    print(f"serving with {mode}", flush=True)
    if ctl is not None:
        ctl.send(b"ready\n")
    async with server:
        await server.serve_forever()


class Control:
    """The worker's end of its control socket (fd 0, a socketpair with the server): JSON
    lines in (the confinement, then the job with its log and listening socket as passed
    fds), "ready" or "error: ..." out."""

    def __init__(self, fd: int = 0) -> None:
        self.sock = socket.socket(fileno=fd)
        self.sock.setblocking(True)
        self._buf = b""
        self._fds: list[int] = []

    def _more(self) -> bool:
        data, anc, _flags, _addr = self.sock.recvmsg(1 << 16, socket.CMSG_SPACE(16 * 4))
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                n = len(payload) // 4
                self._fds += list(array.array("i", payload[: n * 4]))
        self._buf += data
        return bool(data)

    def recv(self) -> dict | None:
        """The next JSON line (None at end of stream)."""
        while b"\n" not in self._buf:
            if not self._more():
                return None
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def take_fds(self, n: int) -> list[int]:
        """The next `n` passed fds (they may come with a later read than their line)."""
        while len(self._fds) < n:
            if not self._more():
                raise SystemExit("the server went away before passing the job's files")
        fds, self._fds = self._fds[:n], self._fds[n:]
        return fds

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            pass


def _preimport() -> None:
    """The model libraries, imported with the cyclic collector off (it would walk their
    growing heaps again and again: about a third of their import CPU); the caller collects
    once afterwards."""
    from ladle.entities.mlflow_adapter import PREIMPORT

    enabled = gc.isenabled()
    gc.disable()
    try:
        for mod in (*PREIMPORT, "pandas", "sklearn.ensemble", "skops.io"):
            try:
                __import__(mod)
            except Exception:
                pass
    finally:
        if enabled:
            gc.enable()


def _from_server(warm: bool) -> tuple[argparse.Namespace, Control]:
    """A worker started by ladle's server: confine this process first (single-threaded, before
    any import that may start threads), then, for a pre-warmed spare, import the heavy
    libraries, then wait for the job (the one model to serve) so that a cold start pays only
    for loading the model."""
    ctl = Control(0)
    spec = ctl.recv()
    if spec is None:
        raise SystemExit(0)
    try:
        from ladle.replica.confine import confine

        confine(spec.get("confine") or {})
    except Exception as e:
        ctl.send(f"error: could not confine the worker: {e}\n".encode())
        raise SystemExit(3)
    if warm:
        _preimport()
    job = ctl.recv()
    if job is None:
        raise SystemExit(0)
    log_fd, listen_fd = ctl.take_fds(2)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    os.environ.update(job.get("env") or {})
    home = (job.get("env") or {}).get("HOME")
    if home and os.path.isdir(home):
        os.chdir(home)
    listen = socket.socket(fileno=listen_fd)
    return argparse.Namespace(kind=job["kind"], model_dir=job["model_dir"], socket=job["socket"],
                              concurrency=int(job["concurrency"]), listen=listen), ctl


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="ladle-replica")
    ap.add_argument("--kind", default="mlflow_pyfunc")
    ap.add_argument("--model-dir")
    ap.add_argument("--socket")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--standby", action="store_true",
                    help="started by ladle as a pre-warmed spare: control socket on fd 0")
    ap.add_argument("--job", action="store_true", help="started by ladle: control socket on fd 0")
    args = ap.parse_args(argv)
    ctl = None
    if args.standby or args.job:
        args, ctl = _from_server(warm=args.standby)
    elif not args.model_dir or not args.socket:
        ap.error("--model-dir and --socket are required")
    try:
        asyncio.run(amain(args, ctl))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
