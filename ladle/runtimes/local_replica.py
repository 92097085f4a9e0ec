"""One local replica: a worker process and the multiplexed Unix-socket connection to it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
from pathlib import Path
from typing import AsyncIterator

from ladle.replica import protocol as p
from ladle.runtimes.base import InFlight, Prepared, Reply, ReplicaGone
from ladle.runtimes.sandbox import Sandbox
from ladle.runtimes.warm_pool import WarmPool
from ladle.runtimes.worker_launch import Launcher

_END = object()


class LocalReplica:
    def __init__(self, prepared: Prepared, socket_path: Path, log_path: Path, concurrency: int,
                 env_vars: dict[str, str], kind: str, launcher: Launcher | None = None) -> None:
        self.prepared = prepared
        self.socket_path = socket_path
        self.log_path = log_path
        self.concurrency = concurrency
        self.env_vars = env_vars
        self.kind = kind
        # without a sandbox (Ray's replicas, tests): scrubbed environment, non-dumpable
        self.launcher = launcher or Launcher(Sandbox("none", reason="not configured"), socket_path.parent)
        self.proc: asyncio.subprocess.Process | None = None
        self.load = InFlight()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Queue] = {}
        self._next_id = 0
        self._gone = False
        self._read_task: asyncio.Task | None = None

    @property
    def alive(self) -> bool:
        return not self._gone and self.proc is not None and self.proc.returncode is None

    def _preexec(self):
        """Run in the forked child before the worker starts (a subclass's hook)."""
        return None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    async def start(self, timeout: float, warm: WarmPool | None = None) -> None:
        """Start the worker (a pre-warmed spare when one is ready) and hand it the job: the
        server makes the listening socket (in its own run dir) and passes it with the log."""
        launcher = warm.launcher if warm is not None else self.launcher
        deadline = time.monotonic() + timeout
        listen = await asyncio.to_thread(self._listen)
        try:
            w = warm.take(self.prepared.python, self.prepared.env) if warm is not None else None
            if w is None:
                w = await launcher.spawn(self.prepared.python, self.prepared.env, warm=False,
                                         preexec=self._preexec())
            self.proc = w.proc
            self._reaper = asyncio.get_running_loop().create_task(self._reap(w, launcher))
            try:
                await launcher.hand_job(w, self.kind, self.prepared.model_dir, self.socket_path,
                                        self.concurrency, self.env_vars, self.prepared.env,
                                        self.log_path, listen)
                await launcher.wait_ready(w, max(1.0, deadline - time.monotonic()))
            except BaseException:
                await self.kill()
                raise
        finally:
            listen.close()
        await self._connect(max(1.0, deadline - time.monotonic()))

    def _listen(self) -> socket.socket:
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(str(self.socket_path))
        s.listen(128)
        return s

    async def _reap(self, w, launcher: Launcher) -> None:
        """Once the worker exits: its control socket and scratch directory go. (Its socket
        file stays until the path is reused: a group made again for the same entity reuses
        it at once, and removing it here could remove the new replica's.)"""
        await w.proc.wait()
        w.ctl.close()
        await launcher.remove(w.scratch)

    async def _connect(self, timeout: float) -> None:
        """Connect to the worker's socket once it listens, start reading, ping it."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None and self.proc.returncode is not None:
                raise RuntimeError(f"replica process exited with code {self.proc.returncode} while loading")
            if self.socket_path.exists():
                try:
                    self._reader, self._writer = await asyncio.open_unix_connection(
                        str(self.socket_path), limit=2**26)
                    break
                except (ConnectionRefusedError, FileNotFoundError):
                    if self.proc is None:
                        raise
            if time.monotonic() > deadline:
                await self.kill()
                raise RuntimeError(f"replica did not become ready within {timeout:.0f}s")
            await asyncio.sleep(0.02)
        self._writer.transport.set_write_buffer_limits(high=2**22)
        self._read_task = asyncio.get_running_loop().create_task(self._read_loop())
        await self.ping(timeout=max(1.0, deadline - time.monotonic()))

    async def ping(self, timeout: float = 5.0) -> dict:
        rid, q = self._open()
        try:
            self._writer.write(p.frame(rid, p.PING))
            kind, payload = await asyncio.wait_for(q.get(), timeout)
            if kind is _END:
                raise ReplicaGone("replica went away")
            return json.loads(payload)
        finally:
            self._pending.pop(rid, None)

    def _open(self) -> tuple[int, asyncio.Queue]:
        if self._gone or self._writer is None:
            raise ReplicaGone("replica is not available")
        self._next_id = (self._next_id + 1) & 0x7FFFFFFF
        q: asyncio.Queue = asyncio.Queue()
        self._pending[self._next_id] = q
        return self._next_id, q

    async def _read_loop(self) -> None:
        try:
            while True:
                rid, kind, payload = await p.read_frame(self._reader)
                q = self._pending.get(rid)
                if q is not None:
                    q.put_nowait((kind, payload))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self._gone = True
            for q in self._pending.values():
                q.put_nowait((_END, b""))

    @property
    def in_flight(self) -> int:
        return self.load.count

    async def call(self, meta: dict, body: bytes) -> Reply:
        rid, q = self._open()
        self.load.enter()
        try:
            self._writer.write(p.frame(rid, p.REQUEST, p.request_payload(meta, body)))
            kind, payload = await q.get()
            if kind is _END:
                raise ReplicaGone("the replica serving this request stopped; retry the request")
            head = json.loads(payload)
        except BaseException:
            self._finish(rid, cancel=not self._gone)
            raise

        spans: list[bytes] = []

        async def chunks() -> AsyncIterator[bytes]:
            finished = False
            try:
                while True:
                    kind, payload = await q.get()
                    if kind == p.CHUNK:
                        yield payload
                    elif kind == p.SPANS:
                        spans.append(payload)
                    elif kind == p.END:
                        finished = True
                        return
                    elif kind is _END:
                        raise ReplicaGone("the replica serving this request stopped mid-response")
            finally:
                self._finish(rid, cancel=not finished and not self._gone)

        return Reply(head["status"], head.get("content_type", "application/json"), chunks(), spans)

    def _finish(self, rid: int, cancel: bool) -> None:
        if self._pending.pop(rid, None) is not None:
            self.load.leave()
        if cancel and self._writer is not None and not self._writer.is_closing():
            self._writer.write(p.frame(rid, p.CANCEL))

    async def close(self) -> None:
        """Close this connection (the worker goes on serving its other connections)."""
        self._gone = True
        if self._writer is not None:
            self._writer.close()

    async def wait(self) -> int:
        assert self.proc is not None
        return await self.proc.wait()

    async def kill(self, grace: float = 5.0) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            await asyncio.wait_for(self.proc.wait(), grace)
        except asyncio.TimeoutError:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await self.proc.wait()
        if self._writer is not None:
            self._writer.close()


class AttachedReplica(LocalReplica):
    """A connection to a worker that another process started and owns (a Ray Serve replica
    on this machine): requests go straight to its socket."""

    def __init__(self, socket_path: Path) -> None:
        super().__init__(Prepared("", ""), socket_path, Path(os.devnull), 0, {}, "")

    @property
    def alive(self) -> bool:
        return not self._gone and self._writer is not None

    async def attach(self, timeout: float = 5.0) -> None:
        await self._connect(timeout)
