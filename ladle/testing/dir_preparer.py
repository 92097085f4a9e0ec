"""A Preparer over locally saved MLflow model directories (no registry), for tests.

Picklable, so it also runs inside Ray Serve replicas (RayBackend(prepare_in_replica=True)).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ladle.runtimes.base import GroupSpec, Log, Prepared


@dataclass
class DirPreparer:
    """Model name -> a saved MLflow model directory; the interpreter comes from ladle's own
    environment check (the server's interpreter when it satisfies the model's requirements,
    else a uv-built environment under envs_dir)."""

    models: dict[str, str]
    envs_dir: str

    async def __call__(self, spec: GroupSpec, log: Log) -> Prepared:
        from ladle.entities.environment import python_for
        from ladle.entities.prepare import run_logged

        if spec.model_name not in self.models:
            raise RuntimeError(f"no saved model '{spec.model_name}'")
        d = Path(self.models[spec.model_name])
        log(f"Model directory {d}")
        python, extra = await python_for(d, Path(self.envs_dir), log,
                                         lambda argv, env: run_logged(argv, log, env))
        return Prepared(python=python, model_dir=str(d), env=extra)
