"""One running app process: started confined (ladle/replica/app_exec.py, the model workers'
containment), its output appended to the app's log, watched until it listens on its port,
stopped by process group.

The app's environment is what a Databricks App gets (the deployment's `env`) plus its port
(DATABRICKS_APP_PORT and the variables common frameworks read), its own HOME and temp dir,
the environment's bin first on PATH, and nothing of the server's (sandbox.exec_env).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from ladle.runtimes.sandbox import Sandbox, exec_env, job_env
from ladle.schemas.apps import AppLaunch


class AppStartError(RuntimeError):
    """The app did not come up (the message says why, for the deployment's status)."""


@dataclass
class AppProcess:
    launch: AppLaunch
    proc: asyncio.subprocess.Process
    port: int
    scratch: Path
    started: float = field(default_factory=time.monotonic)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_env(port: int) -> dict[str, str]:
    """The port (and loopback host) in the variables apps and their frameworks read."""
    p = str(port)
    return {"DATABRICKS_APP_PORT": p, "PORT": p, "UVICORN_PORT": p, "UVICORN_HOST": "127.0.0.1",
            "STREAMLIT_SERVER_PORT": p, "STREAMLIT_SERVER_ADDRESS": "127.0.0.1", "GRADIO_SERVER_PORT": p,
            "GRADIO_SERVER_NAME": "127.0.0.1", "FLASK_RUN_PORT": p, "FLASK_RUN_HOST": "127.0.0.1"}


def app_env(launch: AppLaunch, env_dir: Path, scratch: Path, port: int) -> dict[str, str]:
    python = str(env_dir / "bin" / "python")
    base = exec_env(python, {})
    env = {**base, **job_env(str(scratch / "home"), str(scratch / "tmp"), launch.env, {}), **port_env(port)}
    env["VIRTUAL_ENV"] = str(env_dir)
    env["PATH"] = base["PATH"]    # the environment's bin first, whatever app.yaml says
    return env


def open_to_worker(path: Path) -> None:
    """Make a tree readable by the worker user (its directories searchable): the app's source
    is shown to it read-only in its own mount namespace (blocks)."""
    for root, dirs, files in os.walk(path):
        os.chmod(root, os.stat(root).st_mode | 0o555)
        for f in files:
            p = os.path.join(root, f)
            if not os.path.islink(p):
                os.chmod(p, os.stat(p).st_mode | 0o444)


async def spawn(sandbox: Sandbox, launch: AppLaunch, env_dir: Path, run_dir: Path, log_path: Path
                ) -> AppProcess:
    port = free_port()
    scratch = await asyncio.to_thread(sandbox.make_scratch, run_dir)
    env = app_env(launch, env_dir, scratch, port)
    spec = sandbox.spec(ro=[str(env_dir), str(launch.source_dir)], rw=[str(scratch)])
    job = {"confine": spec, "cwd": str(launch.source_dir), "argv": launch.command, "env": env}
    log_fd = await asyncio.to_thread(os.open, log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ladle.replica.app_exec", stdin=asyncio.subprocess.PIPE, stdout=log_fd,
            stderr=log_fd, env=exec_env(sys.executable, {}), cwd="/", start_new_session=True)
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, scratch, True)
        raise
    finally:
        os.close(log_fd)
    assert proc.stdin is not None
    proc.stdin.write(orjson.dumps(job) + b"\n")
    proc.stdin.close()
    return AppProcess(launch, proc, port, scratch)


async def _listens(port: int) -> bool:
    try:
        _, w = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    w.close()
    return True


async def wait_listening(p: AppProcess, timeout: float, poll: float = 0.2) -> None:
    """Until the app accepts connections on its port; AppStartError when it exits first or
    does not listen within `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    exited = asyncio.ensure_future(p.proc.wait())
    try:
        while True:
            if await _listens(p.port):
                return
            if exited.done():
                raise AppStartError(f"the app's command ({' '.join(p.launch.command)}) exited with code "
                                    f"{p.proc.returncode} before it listened on its port "
                                    f"(DATABRICKS_APP_PORT={p.port}); see the app's logs")
            if loop.time() >= deadline:
                raise AppStartError(f"the app did not listen on its port (DATABRICKS_APP_PORT={p.port}) within "
                                    f"{timeout:.0f}s; an app must serve HTTP on 127.0.0.1 at that port")
            await asyncio.wait({exited}, timeout=min(poll, max(0.0, deadline - loop.time())))
    finally:
        if not exited.done():
            exited.cancel()


async def terminate(p: AppProcess, grace: float = 5.0) -> None:
    """Stop the app's whole process group (SIGTERM, then SIGKILL after `grace`) and remove
    its scratch directory."""
    if p.proc.returncode is None:
        _signal_group(p.proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(p.proc.wait(), grace)
        except asyncio.TimeoutError:
            pass
    _signal_group(p.proc.pid, signal.SIGKILL)     # whatever it left behind in its group
    if p.proc.returncode is None:
        await p.proc.wait()
    await asyncio.to_thread(shutil.rmtree, p.scratch, True)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
