"""Starting a replica worker process and handing it its job.

A worker is started as `python -m ladle.replica.worker --job` (or `--standby` for a
pre-warmed spare) with a scrubbed environment (sandbox.exec_env), `/` as its directory, no
output, and one end of a socketpair as fd 0: its control socket. Over it the server sends
(1) how to confine itself, at once, and (2) later, the job: the model to load, the
environment to add, and, as passed file descriptors, its log file and the listening socket
the server made for it in LADLE_HOME/run (a directory the worker cannot see). The worker
answers "ready" once it serves, or "error: ..." when it cannot confine itself.

Nothing secret is in the worker's command line or initial environment, so a replica that
watches /proc for new processes (same worker uid, before the newcomer made itself
non-dumpable) learns nothing.

Where the interpreter and environment are the server's own, the worker is not started but
forked from the replica template (ladle/runtimes/template.py), which has already imported
the model libraries; the forked child then takes the same path from the control socket on
(confine itself, receive the job), so the two are handed the same things the same way.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import orjson

from ladle.runtimes.sandbox import Sandbox, exec_env, job_env
from ladle.runtimes.template import ForkedProc, Template


@dataclass
class Launched:
    proc: asyncio.subprocess.Process | ForkedProc
    ctl: socket.socket
    scratch: Path
    python: str


class Launcher:
    def __init__(self, sandbox: Sandbox, run_dir: Path, template: Template | None = None) -> None:
        self.sandbox = sandbox
        self.run_dir = run_dir
        self.template = template

    def forks(self, python: str, prepared_env: dict[str, str]) -> bool:
        """Whether workers of this interpreter and environment are forked from the template."""
        return self.template is not None and self.template.serves(python, prepared_env)

    async def spawn(self, python: str, prepared_env: dict[str, str], warm: bool,
                    preexec: Callable[[], None] | None = None) -> Launched:
        scratch = await asyncio.to_thread(self.sandbox.make_scratch, self.run_dir)
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            proc = None
            if not warm and preexec is None and self.forks(python, prepared_env):
                proc = await self.template.fork(child, self.template.start_timeout)
            if proc is None:
                proc = await asyncio.create_subprocess_exec(
                    python, "-m", "ladle.replica.worker", "--standby" if warm else "--job",
                    stdin=child.fileno(), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                    env=exec_env(python, prepared_env), cwd="/", start_new_session=True, preexec_fn=preexec,
                )
        except BaseException:
            parent.close()
            await self.remove(scratch)
            raise
        finally:
            child.close()
        # a few hundred bytes into a new socketpair's empty buffer: never blocks
        parent.sendall(orjson.dumps({"confine": self.sandbox.spec(ro=[], rw=[str(scratch)])}) + b"\n")
        return Launched(proc, parent, scratch, python)

    async def hand_job(self, w: Launched, kind: str, model_dir: str, socket_path: Path, concurrency: int,
                       entity_env: dict[str, str], prepared_env: dict[str, str], log_path: Path,
                       listen: socket.socket) -> None:
        seen_model = await asyncio.to_thread(self.sandbox.place_model, model_dir, w.scratch)
        home, tmp = str(w.scratch / "home"), str(w.scratch / "tmp")
        job = {"kind": kind, "model_dir": seen_model, "socket": str(socket_path), "concurrency": concurrency,
               "env": job_env(home, tmp, entity_env, prepared_env)}
        log_fd = await asyncio.to_thread(os.open, log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            socket.send_fds(w.ctl, [orjson.dumps(job) + b"\n"], [log_fd, listen.fileno()])
        finally:
            os.close(log_fd)

    async def wait_ready(self, w: Launched, timeout: float) -> None:
        """Until the worker says it serves; RuntimeError when it exits or says why it cannot."""
        loop = asyncio.get_running_loop()
        w.ctl.setblocking(False)
        buf = b""
        deadline = loop.time() + timeout
        exited = asyncio.ensure_future(w.proc.wait())
        try:
            while b"\n" not in buf:
                recv = asyncio.ensure_future(loop.sock_recv(w.ctl, 4096))
                done, _ = await asyncio.wait({recv, exited}, timeout=max(0.0, deadline - loop.time()),
                                             return_when=asyncio.FIRST_COMPLETED)
                if recv not in done:
                    recv.cancel()
                    if exited in done:
                        raise RuntimeError(f"replica process exited with code {w.proc.returncode} while loading")
                    raise RuntimeError(f"replica did not become ready within {timeout:.0f}s")
                data = recv.result()
                if not data:
                    rc = await asyncio.wait_for(asyncio.shield(exited), 5.0)
                    raise RuntimeError(f"replica process exited with code {rc} while loading")
                buf += data
        finally:
            if not exited.done():
                exited.cancel()
        line = buf.split(b"\n", 1)[0].decode(errors="replace")
        if line != "ready":
            raise RuntimeError(line.removeprefix("error: "))

    async def remove(self, scratch: Path | None) -> None:
        if scratch is not None:
            await asyncio.to_thread(shutil.rmtree, scratch, True)
