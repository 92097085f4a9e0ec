"""A model's Python environment: reuse the server's when it satisfies the model's
requirements, otherwise a virtual environment built with `uv`, cached by the hash of the
requirements."""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
import shutil
import sys
from pathlib import Path
from typing import Awaitable, Callable

from packaging.requirements import InvalidRequirement, Requirement

Log = Callable[[str], None]
Run = Callable[[list[str], dict[str, str] | None], Awaitable[int]]


def read_requirements(model_dir: Path) -> list[str]:
    f = model_dir / "requirements.txt"
    if not f.exists():
        return []
    lines = []
    for line in f.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            lines.append(line)
    return lines


def unmet(requirements: list[str]) -> list[str]:
    """The requirements the running interpreter's environment does not satisfy."""
    missing = []
    for line in requirements:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            missing.append(line)
            continue
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            have = md.version(req.name)
        except md.PackageNotFoundError:
            missing.append(line)
            continue
        if req.specifier and not req.specifier.contains(have, prereleases=True):
            missing.append(f"{line} (have {have})")
    return missing


def uv_binary() -> str:
    try:
        from uv import find_uv_bin  # type: ignore[import-not-found]

        return find_uv_bin()
    except Exception:
        found = shutil.which("uv")
        if not found:
            raise RuntimeError("uv is not installed; it is needed to build model environments")
        return found


async def python_for(model_dir: Path, envs_dir: Path, log: Log, run: Run) -> tuple[str, dict[str, str]]:
    """The interpreter to run the model's replicas with, and extra environment variables."""
    reqs = read_requirements(model_dir)
    missing = unmet(reqs)
    if not missing:
        log(f"Server environment satisfies all {len(reqs)} requirements; reusing it")
        return sys.executable, {}
    log(f"Requirements not met by the server environment: {', '.join(missing)}")
    digest = hashlib.sha256("\n".join(sorted(reqs)).encode()).hexdigest()[:16]
    env_dir = envs_dir / digest
    python = env_dir / "bin" / "python"
    # The replica imports ladle's own (stdlib-only) replica modules from a private path.
    extra = {"PYTHONPATH": str(_ladle_path(envs_dir))}
    if (env_dir / ".complete").exists():
        log(f"Reusing cached environment {env_dir}")
        return str(python), extra
    shutil.rmtree(env_dir, ignore_errors=True)
    uv = uv_binary()
    log(f"Building environment {env_dir} with uv")
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    if await run([uv, "venv", "--python", sys.executable, str(env_dir)], None) != 0:
        raise RuntimeError("uv venv failed")
    req_file = env_dir / "requirements.txt"
    req_file.write_text("\n".join(reqs) + "\n")
    rc = await run([uv, "pip", "install", "--python", str(python), "-r", str(req_file)], None)
    if rc != 0:
        raise RuntimeError(f"installing the model's requirements failed (uv exit code {rc}, python {py})")
    (env_dir / ".complete").write_text("ok\n")
    log("Environment ready")
    return str(python), extra


def _ladle_path(envs_dir: Path) -> Path:
    """A directory holding only a link to the ladle package, for PYTHONPATH."""
    root = envs_dir / "_ladle"
    link = root / "ladle"
    src = Path(__file__).resolve().parent.parent
    if not link.exists():
        root.mkdir(parents=True, exist_ok=True)
        try:
            os.symlink(src, link)
        except FileExistsError:
            pass
    return root
