"""The embedded MLflow tracking server: MLflow's own server as a child process on a private
loopback port, SQLite backend and artifacts under LADLE_HOME, answering only requests that
carry a token made when the server starts (ladle.runtimes.mlflow_gate); `token` is for ladle's
server code only (the proxy, the registry look-ups, model downloads).

It runs only while it is used (socket activation, as systemd and inetd do it): the server
binds and listens on the port itself, for its whole life, and the first connection that
arrives starts the child, which inherits the listening socket and accepts that connection and
every later one from the kernel's backlog. Once the child has answered nothing for `idle_s`
seconds and no connection to it is open, it closes its copy of the socket and exits 0
(idle_uvicorn.py); the server then watches the socket again, and the next connection (one
made meanwhile has waited in the backlog) starts a new child. A server that never touches the registry never
pays for MLflow (~200 MB and seconds of imports); one that does pays the memory only while it
is used, and the start (a few seconds) on the first call after each stop. No caller sees a
refused connection. A child that crashed is started again by the next connection; one that
failed before accepting is retried only after a back-off (1 s, doubling up to 60 s), and the
connections that come meanwhile are closed at once (the caller gets an error, not a wait).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import struct
import sys
import time
from pathlib import Path
from typing import BinaryIO, Sequence

from ladle.support.child_env import server_child_env

log = logging.getLogger("ladle.registry")
CHILD = ("-m", "ladle.runtimes.mlflow_gate")
BACKLOG = 1024          # connections that may wait while a child starts (the kernel caps it)
RETRY_S = (1.0, 60.0)   # the back-off after a failed start: first, longest


class TrackingServer:
    def __init__(self, mlflow_dir: Path, log_path: Path, cache_dir: Path | None = None,
                 idle_s: float = 0.0, child: Sequence[str] = CHILD) -> None:
        self.dir = mlflow_dir
        self.cache_dir = cache_dir   # a new home's database is copied from a migrated one there
        self.log_path = log_path
        self.idle_s = idle_s         # the child exits after this long without a request (0: never)
        self.child = tuple(child)    # what runs the child (the python arguments before its options)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(BACKLOG)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_urlsafe(32)
        self.proc: asyncio.subprocess.Process | None = None   # the current (or last) child
        self.starts = 0              # children started
        self._run: asyncio.Task | None = None
        self._spawning: asyncio.Task | None = None
        self._watching = False
        self._closing = False
        self._failures = 0           # failed starts in a row
        self.refuse_until = 0.0      # (time.monotonic) connections are reset until then

    async def start(self) -> None:
        """Start watching the port; a child starts when a connection is pending."""
        self._watch()

    def _watch(self) -> None:
        if not self._watching and not self._closing:
            asyncio.get_running_loop().add_reader(self.sock.fileno(), self._pending)
            self._watching = True

    def _unwatch(self) -> None:
        if self._watching:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self._watching = False

    def _pending(self) -> None:
        """A connection waits in the backlog and no child runs."""
        if time.monotonic() < self.refuse_until:
            self._refuse()
            return
        self._unwatch()
        self._run = asyncio.get_running_loop().create_task(self._child(time.monotonic()))

    def _refuse(self) -> None:
        """Reset the waiting connections (while a failed start's back-off lasts)."""
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:        # none left (BlockingIOError), or the socket is closing
                return
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    async def _child(self, woken_at: float) -> None:
        """One child's life: started, awaited, and the socket watched again after it."""
        self._spawning = asyncio.get_running_loop().create_task(self._spawn())
        try:
            proc, ready_r = await self._spawning
        except Exception as e:   # noqa: BLE001 (reported; the back-off applies)
            await self._failed(f"could not be started: {e}")
            return
        ready = await _read_ready(ready_r)
        if ready:
            self._failures = 0
            await self._note(logging.INFO, f"MLflow registry started (pid {proc.pid}): a connection woke it; "
                                           f"accepting after {time.monotonic() - woken_at:.1f} s")
        rc = await proc.wait()
        if self._closing:
            return
        if rc == 0:
            await self._note(logging.INFO, f"MLflow registry stopped (pid {proc.pid}): idle for "
                                           f"{self.idle_s:g} s; the next connection starts it again")
        elif not ready:
            await self._failed(f"exited with code {rc} before accepting connections (see {self.log_path})")
            return
        else:
            await self._note(logging.WARNING, f"MLflow registry exited with code {rc} (pid {proc.pid}); "
                                              "the next connection starts it again")
        self._watch()

    async def _failed(self, why: str) -> None:
        self._failures += 1
        wait = min(RETRY_S[0] * 2 ** (self._failures - 1), RETRY_S[1])
        self.refuse_until = time.monotonic() + wait
        await self._note(logging.WARNING, f"MLflow registry {why}; connections are refused for {wait:g} s, "
                                          "then the next one tries again")
        self._watch()

    async def _note(self, level: int, msg: str) -> None:
        """In the server's log, and in the registry's own log file between its children's lines."""
        log.log(level, msg)
        await asyncio.to_thread(self._append, f"{time.strftime('%Y-%m-%d %H:%M:%S')} ladle: {msg}\n")

    def _append(self, line: str) -> None:
        try:
            with open(self.log_path, "a") as f:
                f.write(line)
        except OSError:
            pass

    def _open_log(self) -> BinaryIO:
        self.dir.mkdir(parents=True, exist_ok=True)
        return open(self.log_path, "ab")

    async def _spawn(self) -> tuple[asyncio.subprocess.Process, int]:
        fd = self.sock.fileno()
        logf = await asyncio.to_thread(self._open_log)
        ready_r, ready_w = os.pipe()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, *self.child,
                "--backend-store-uri", f"sqlite:///{self.dir / 'mlflow.db'}",
                "--artifacts-destination", str(self.dir / "artifacts"),
                "--fd", str(fd), "--ready-fd", str(ready_w), "--idle-s", str(self.idle_s),
                *(["--cache-dir", str(self.cache_dir)] if self.cache_dir is not None else []),
                stdin=asyncio.subprocess.PIPE, stdout=logf, stderr=logf, pass_fds=(fd, ready_w),
                env=server_child_env({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}),
                start_new_session=True,
            )
            self.starts += 1
            assert self.proc.stdin is not None
            self.proc.stdin.write(self.token.encode() + b"\n")
            await self.proc.stdin.drain()
            self.proc.stdin.close()
        except BaseException:
            os.close(ready_r)
            raise
        finally:
            logf.close()
            os.close(ready_w)    # the child holds the write end now: EOF when it exits
        return self.proc, ready_r

    async def stop(self) -> None:
        self._closing = True
        self._unwatch()
        if self._spawning is not None:
            try:
                await self._spawning
            except Exception:   # noqa: BLE001 (a failed start leaves nothing to stop)
                pass
        proc = self.proc
        if proc is not None and proc.returncode is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                await asyncio.wait_for(proc.wait(), 10)
            except (ProcessLookupError, asyncio.TimeoutError):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self._run is not None:
            try:
                await asyncio.wait_for(self._run, 5)
            except (Exception, asyncio.TimeoutError):   # noqa: BLE001 (stopping)
                pass
        self.sock.close()


async def _read_ready(fd: int) -> bool:
    """Whether the child wrote `ready` on its pipe (False: it exited first)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                os.fdopen(fd, "rb", 0))
    try:
        return (await reader.readline()).startswith(b"ready")
    finally:
        transport.close()
