"""Build step for an MLflow model served entity: resolve the registered model version,
download its artifacts (cached under LADLE_HOME/models), and pick or build its Python
environment. Every step goes to the entity's build log."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from ladle.entities.environment import python_for
from ladle.entities.registry import Registry
from ladle.support.child_env import server_child_env
from ladle.schemas.replicas import GroupSpec, Log, Prepared


def model_dir(models_dir: Path, name: str, version: str) -> Path:
    return models_dir / name.replace("/", "_") / str(version)


class PyfuncPreparer:
    def __init__(self, registry: Registry, models_dir: Path, envs_dir: Path,
                 artifacts_dir: Path | None = None) -> None:
        self.registry = registry
        self.models_dir = models_dir
        self.envs_dir = envs_dir
        # the embedded registry's artifact store: its files are copied from disk, not downloaded
        self.artifacts_dir = artifacts_dir
        self._locks: dict[str, asyncio.Lock] = {}

    async def __call__(self, spec: GroupSpec, log: Log) -> Prepared:
        dest = model_dir(self.models_dir, spec.model_name, spec.model_version)
        lock = self._locks.setdefault(str(dest), asyncio.Lock())
        async with lock:
            if (dest / "MLmodel").exists():
                log(f"Model artifacts for {spec.model_name} version {spec.model_version} are cached at {dest}")
            else:
                log(f"Resolving model '{spec.model_name}' version {spec.model_version} in the registry "
                    f"at {self.registry.tracking_uri}")
                mv = await self.registry.get_version(spec.model_name, spec.model_version)
                log(f"Found model version {mv.version} (source {mv.source}, status {mv.status})")
                if await self._copy_local(spec, dest, log):
                    return await self._environment(dest, log)
                # The registry is ladle's own: a registry URI in the server's environment must not win.
                env = {"MLFLOW_TRACKING_URI": self.registry.tracking_uri,
                       "MLFLOW_REGISTRY_URI": self.registry.tracking_uri}
                argv = [sys.executable, "-m", "ladle.entities.fetch",
                        f"models:/{spec.model_name}/{spec.model_version}", str(dest)]
                token = self.registry.token
                rc = await run_logged(argv + ["--token-stdin"] if token else argv, log, env,
                                      stdin=f"{token}\n".encode() if token else None)
                if rc != 0:
                    raise RuntimeError(f"downloading the model artifacts failed (exit code {rc})")
            return await self._environment(dest, log)

    async def _environment(self, dest: Path, log: Log) -> Prepared:
        python, extra = await python_for(dest, self.envs_dir, log, lambda argv, env: run_logged(argv, log, env))
        return Prepared(python=python, model_dir=str(dest), env=extra)

    async def _copy_local(self, spec: GroupSpec, dest: Path, log: Log) -> bool:
        """Copy the version's files from the embedded registry's store on this disk (no MLflow
        process to start, no HTTP); False when they are not there (the caller downloads)."""
        if self.artifacts_dir is None:
            return False
        try:
            uri = await self.registry.download_uri(spec.model_name, spec.model_version)
        except Exception:  # noqa: BLE001 - the download below reports what is wrong
            return False
        src = local_artifacts(self.artifacts_dir, uri)
        if src is None:
            return False
        # what MLflow's own download of a `models:/` URI adds next to the files
        meta = f"model_name: {json.dumps(spec.model_name)}\nmodel_version: {json.dumps(str(spec.model_version))}\n"
        n = await asyncio.to_thread(_copy_in, src, dest, meta)
        log(f"Copied {n} files of {uri} from the registry's store to {dest}")
        return True


def local_artifacts(root: Path, uri: str) -> Path | None:
    """The directory under `root` that an `mlflow-artifacts:/<path>` URI names, when it is a
    model (has MLmodel) made of plain files and directories inside `root`; else None."""
    parsed = urlparse(uri)
    if parsed.scheme != "mlflow-artifacts" or parsed.netloc or not parsed.path.strip("/"):
        return None
    base = root.resolve()
    src = (base / parsed.path.lstrip("/")).resolve()
    if not src.is_relative_to(base) or not (src / "MLmodel").is_file():
        return None
    for d, dirs, files in os.walk(src):
        if any(os.path.islink(os.path.join(d, n)) for n in dirs + files):
            return None
    return src


def _copy_in(src: Path, dest: Path, meta: str) -> int:
    """Copy (never hard-link: a replica must not reach the registry's own files) into `dest`
    whole or not at all, with `meta` as its registered_model_meta; returns the number of files."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".copy-"))
    try:
        shutil.copytree(src, tmp / "m")
        (tmp / "m" / "registered_model_meta").write_text(meta)
        os.replace(tmp / "m", dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return sum(len(f) for _, _, f in os.walk(dest))


async def run_logged(argv: list[str], log: Log, env: dict[str, str] | None = None,
                     stdin: bytes | None = None) -> int:
    """Run a build step with the server's environment less ladle's settings (plus `env`),
    `stdin` as its input, each output line to the build log."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=server_child_env(env),
    )
    if stdin is not None:
        assert proc.stdin is not None
        proc.stdin.write(stdin)
        await proc.stdin.drain()
        proc.stdin.close()
    assert proc.stdout is not None
    async for line in proc.stdout:
        text = line.decode(errors="replace").rstrip()
        if text:
            log(text)
    return await proc.wait()
