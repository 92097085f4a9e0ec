"""An app's Python environment: a virtual environment built with uv from the app's
requirements.txt, cached by the hash of that file's contents (two deployments, or two apps,
with the same requirements share one), its build log kept beside it.

An environment is built in a temporary directory and renamed into place when complete, so
a failed or interrupted build never leaves a half-made environment that looks usable.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Callable

from ladle.entities.environment import uv_binary


class EnvError(RuntimeError):
    """The app's environment cannot be built (the message says why, for the deployment)."""


def requirements_digest(source_dir: Path) -> str:
    f = source_dir / "requirements.txt"
    if not f.is_file():
        raise EnvError("requirements.txt: the app's source has no requirements.txt (an empty one will do "
                       "when the app needs nothing beyond Python's standard library)")
    return hashlib.sha256(f.read_bytes()).hexdigest()[:16]


async def build_env(source_dir: Path, envs_dir: Path, log: Callable[[str], None],
                    timeout_s: float = 600.0) -> Path:
    """The environment's directory (bin/python inside), built when not cached yet."""
    digest = await asyncio.to_thread(requirements_digest, source_dir)
    env_dir = envs_dir / digest
    build_log = envs_dir / f"{digest}.log"
    if (env_dir / ".complete").exists():
        log(f"Reusing environment {digest} (requirements.txt unchanged)")
        return env_dir
    await asyncio.to_thread(envs_dir.mkdir, parents=True, exist_ok=True)
    # Its own directory per build: two deployments with the same requirements may build at
    # once (the first to finish is renamed into place; the other is dropped below).
    tmp = envs_dir / f".{digest}.{uuid.uuid4().hex}.building"
    uv = uv_binary()
    log(f"Building environment {digest} with uv (log: {build_log})")
    fd = await asyncio.to_thread(os.open, build_log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        steps = ([uv, "venv", "--python", sys.executable, str(tmp)],
                 [uv, "pip", "install", "--python", str(tmp / "bin" / "python"), "-r",
                  str(source_dir / "requirements.txt")])
        for cmd in steps:
            rc = await _run(cmd, fd, timeout_s)
            if rc != 0:
                tail = await asyncio.to_thread(_tail, build_log, 8)
                raise EnvError(f"building the environment failed: {' '.join(cmd[1:3])} exited with code {rc}"
                               f"{': ' + tail if tail else ''}")
    finally:
        os.close(fd)
    await asyncio.to_thread(_no_dump, tmp)
    await asyncio.to_thread((tmp / ".complete").write_text, "ok\n")
    try:
        await asyncio.to_thread(os.rename, tmp, env_dir)
    except OSError:  # another deployment built the same one meanwhile: use that
        await asyncio.to_thread(shutil.rmtree, tmp, True)
    log("Environment ready")
    return env_dir


# Run by every interpreter of the environment at start-up (a .pth line starting with "import"):
# exec made the app's process dumpable again after its confinement, so another app (same worker
# uid) could read its /proc/<pid>/environ, where its OAuth secret is; this closes that.
NO_DUMP_PTH = "import ctypes; ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)\n"


def _no_dump(env_dir: Path) -> None:
    for site in env_dir.glob("lib/python*/site-packages"):
        (site / "_ladle_no_dump.pth").write_text(NO_DUMP_PTH)


async def _run(cmd: list[str], log_fd: int, timeout_s: float) -> int:
    env = {k: v for k, v in os.environ.items() if k.startswith(("UV_", "PIP_", "HTTP", "HTTPS", "NO_PROXY",
                                                                 "http", "https", "no_proxy", "SSL_"))}
    env.update(PATH=os.environ.get("PATH", "/usr/bin:/bin"), HOME=os.environ.get("HOME", "/root"))
    proc = await asyncio.create_subprocess_exec(*cmd, stdin=asyncio.subprocess.DEVNULL, stdout=log_fd,
                                                stderr=log_fd, env=env, start_new_session=True)
    try:
        return await asyncio.wait_for(proc.wait(), timeout_s)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        return -9


def _tail(path: Path, n: int) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])[-800:]
