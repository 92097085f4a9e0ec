"""Build step for an MLflow model served entity: resolve the registered model version,
download its artifacts (cached under LADLE_HOME/models), and pick or build its Python
environment. Every step goes to the entity's build log."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from ladle.entities.environment import python_for
from ladle.entities.registry import Registry
from ladle.support.child_env import server_child_env
from ladle.schemas.replicas import GroupSpec, Log, Prepared


def model_dir(models_dir: Path, name: str, version: str) -> Path:
    return models_dir / name.replace("/", "_") / str(version)


class PyfuncPreparer:
    def __init__(self, registry: Registry, models_dir: Path, envs_dir: Path) -> None:
        self.registry = registry
        self.models_dir = models_dir
        self.envs_dir = envs_dir
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
            python, extra = await python_for(dest, self.envs_dir, log,
                                             lambda argv, env: run_logged(argv, log, env))
        return Prepared(python=python, model_dir=str(dest), env=extra)


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
