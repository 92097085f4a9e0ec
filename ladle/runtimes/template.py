"""The replica template (zygote) of the server's own environment, seen from the server.

A model whose environment is the server's (ladle/entities/environment.py reuses it) gets
its replicas forked from one template process (ladle/replica/template.py) that has already
imported MLflow, pandas and scikit-learn: each replica shares those pages copy-on-write
(memory) and starts without importing them (time). The template is started like a worker
(scrubbed environment, `/`, no output, its own session) the first time a group needs it,
holds nothing but those imports, and is replaced when it dies. A forked child confines
itself and receives its job over its own control socket exactly as a freshly started worker
does (worker_launch.Launcher sends both), so the trust boundary is the same.

The forked replicas are the template's children, not the server's: `ForkedProc` stands in
for asyncio's Process (pid, returncode, wait) by watching a pidfd the template passes with
each pid, and takes the exit code the template reports when it reaps the child (-1 when
the template died before it could).
"""

from __future__ import annotations

import array
import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys

from ladle.runtimes.sandbox import exec_env

log = logging.getLogger("ladle.template")
UNKNOWN_EXIT = -1


class ForkedProc:
    """The parts of asyncio.subprocess.Process the runtimes use, for a template's child."""

    def __init__(self, pid: int, pidfd: int, codes: "dict[int, asyncio.Future[int]]",
                 parent: "AdoptedProc") -> None:
        self.pid = pid
        self._parent = parent
        self.returncode: int | None = None
        self._loop = asyncio.get_running_loop()
        self._pidfd = pidfd
        self._code = codes.setdefault(pid, self._loop.create_future())
        self._codes = codes
        self._exited = self._loop.create_future()
        self._loop.add_reader(pidfd, self._on_exit)

    def _on_exit(self) -> None:
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._loop.create_task(self._settle())

    async def _settle(self) -> None:
        """The exit code the template reports as it reaps the child (at once, unless the
        template itself is gone)."""
        try:
            code = await asyncio.wait_for(asyncio.shield(self._code),
                                          2.0 if self._parent.returncode is None else 0.05)
        except asyncio.TimeoutError:
            code = UNKNOWN_EXIT
        self._codes.pop(self.pid, None)
        self.returncode = code
        if not self._exited.done():
            self._exited.set_result(code)

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)


class Prestarted:
    """A template process and its control socket. `ladle server --demo` starts one first
    thing, before the server's event loop runs, so that its imports overlap the server's own
    start; the first Template given it adopts it (`kill` ends it if none did). A Template
    starts its others the same way."""

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python
        self.ctl, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.popen = subprocess.Popen(
                [python, "-m", "ladle.replica.template"], stdin=child.fileno(), stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, env=exec_env(python, {}), cwd="/", start_new_session=True)
        except BaseException:
            self.ctl.close()
            raise
        finally:
            child.close()
        self.adopted = False

    def kill(self) -> None:
        if not self.adopted and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()
            self.ctl.close()


class AdoptedProc:
    """The parts of asyncio.subprocess.Process the template uses, for a process started with
    subprocess.Popen: its exit is watched through a pidfd, then reaped."""

    def __init__(self, popen: subprocess.Popen) -> None:
        self._popen = popen
        self.pid = popen.pid
        loop = asyncio.get_running_loop()
        self._exited: asyncio.Future[int] = loop.create_future()
        self._pidfd = os.pidfd_open(popen.pid)
        loop.add_reader(self._pidfd, self._on_exit)

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    def _on_exit(self) -> None:
        asyncio.get_running_loop().remove_reader(self._pidfd)
        os.close(self._pidfd)
        code = self._popen.wait()
        if not self._exited.done():
            self._exited.set_result(code)

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)


class Template:
    def __init__(self, start_timeout: float = 120.0, python: str = sys.executable,
                 prestarted: Prestarted | None = None) -> None:
        self.python = python
        self._prestarted = prestarted if prestarted is not None and prestarted.python == python else None
        self.start_timeout = start_timeout
        self.proc: AdoptedProc | None = None
        self.starts = 0                       # how many template processes were started
        self._ctl: socket.socket | None = None
        self._ready: asyncio.Future[bool] | None = None
        self._replies: asyncio.Queue | None = None
        self._codes: dict[int, asyncio.Future[int]] = {}
        self._lock = asyncio.Lock()
        self._buf = b""
        self._fds: list[int] = []
        self._watch: asyncio.Task | None = None
        self._closed = False

    def serves(self, python: str, prepared_env: dict[str, str]) -> bool:
        """Whether replicas of this interpreter and environment can be forked from it."""
        return python == self.python and not prepared_env.get("PYTHONPATH")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def ensure(self) -> None:
        """Start the template unless one runs (or is starting); does not wait for it."""
        async with self._lock:
            if not self._closed and not self.alive:
                await self._start()

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        pre, self._prestarted = self._prestarted, None
        if pre is None:   # none was started before the event loop ran (or it was adopted): one now
            pre = Prestarted(self.python)
        pre.adopted = True
        self.proc, parent = AdoptedProc(pre.popen), pre.ctl
        self.starts += 1
        parent.setblocking(False)
        self._ctl, self._buf, self._fds = parent, b"", []
        self._ready = loop.create_future()
        self._replies = asyncio.Queue()
        loop.add_reader(parent, self._on_readable, parent, self._ready, self._replies)
        self._watch = loop.create_task(self._watch_exit(self.proc, parent, self._ready, self._replies))

    def _on_readable(self, ctl: socket.socket, ready: asyncio.Future, replies: asyncio.Queue) -> None:
        try:
            data, anc, _flags, _addr = ctl.recvmsg(4096, socket.CMSG_SPACE(16 * 4))
        except BlockingIOError:
            return
        except OSError:
            data, anc = b"", []
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                self._fds += list(array.array("i", payload[: len(payload) // 4 * 4]))
        if not data:
            asyncio.get_running_loop().remove_reader(ctl)
            return
        self._buf += data
        while b"\n" in self._buf:
            line, self._buf = self._buf.split(b"\n", 1)
            words = line.decode(errors="replace").split()
            if words == ["ready"] and not ready.done():
                ready.set_result(True)
            elif len(words) == 2 and words[0] == "pid" and self._fds:
                replies.put_nowait((int(words[1]), self._fds.pop(0)))
            elif len(words) == 3 and words[0] == "exit":
                fut = self._codes.setdefault(int(words[1]), asyncio.get_running_loop().create_future())
                if not fut.done():
                    fut.set_result(int(words[2]))
            else:
                replies.put_nowait(None)

    async def _watch_exit(self, proc: "AdoptedProc", ctl: socket.socket,
                          ready: asyncio.Future, replies: asyncio.Queue) -> None:
        """A template that dies is replaced at once (unless the server is closing)."""
        rc = await proc.wait()
        loop = asyncio.get_running_loop()
        loop.remove_reader(ctl)
        ctl.close()
        if not ready.done():
            ready.set_result(False)
        replies.put_nowait(None)
        # one that never became ready (it cannot start here) is tried again on the next fork only
        if self._closed or not ready.result():
            return
        log.warning("replica template pid %s exited with code %s; starting another", proc.pid, rc)
        async with self._lock:
            if not self._closed and self.proc is proc:
                await self._start()

    async def fork(self, worker_end: socket.socket, timeout: float) -> ForkedProc | None:
        """A new child of the template with `worker_end` as its control socket; None when
        no template is ready within `timeout` (the caller starts a fresh worker instead). A
        template found dead on the way is replaced and asked again, once."""
        async with self._lock:
            for attempt in range(2):
                if self._closed:
                    return None
                if not self.alive:
                    await self._start()
                proc = self.proc
                got = await self._fork_once(worker_end, timeout)
                if got is not None:
                    return got
                try:  # a template killed just now may not have been reaped yet
                    await asyncio.wait_for(asyncio.shield(proc.wait()), 1.0)
                except asyncio.TimeoutError:
                    return None   # alive but not answering: a fresh worker instead
            return None

    async def _fork_once(self, worker_end: socket.socket, timeout: float) -> ForkedProc | None:
        try:
            ok = await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except asyncio.TimeoutError:
            ok = False
        if not ok or not self.alive:
            return None
        replies = self._replies
        try:
            socket.send_fds(self._ctl, [b"fork\n"], [worker_end.fileno()])
        except OSError:
            return None
        try:
            got = await asyncio.wait_for(replies.get(), 10.0)
        except asyncio.TimeoutError:
            got = None
        if got is None:
            return None
        pid, pidfd = got
        return ForkedProc(pid, pidfd, self._codes, self.proc)

    async def close(self) -> None:
        self._closed = True
        proc = self.proc
        if proc is not None and proc.returncode is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await proc.wait()
        if self._watch is not None:
            await asyncio.gather(self._watch, return_exceptions=True)
