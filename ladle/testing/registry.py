"""The MLflow client pointed at a ladle server's registry, for registering test models."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

_KEYS = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN", "MLFLOW_REGISTRY_URI")


@contextlib.contextmanager
def tracking(url: str, token: str) -> Iterator[None]:
    """MLFLOW_TRACKING_URI/TOKEN (and MLflow's tracking and registry URIs) set to `url` while
    inside; the environment is put back afterwards."""
    saved = {k: os.environ.get(k) for k in _KEYS}
    os.environ["MLFLOW_TRACKING_URI"], os.environ["MLFLOW_TRACKING_TOKEN"] = url, token
    import mlflow

    mlflow.set_tracking_uri(url)
    mlflow.set_registry_uri(url)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def register_code_model(url: str, token: str, name: str, code: str, workdir: Path,
                        artifacts: dict[str, str] | None = None) -> None:
    """Log a models-from-code pyfunc (`code` calls mlflow.models.set_model), with `artifacts`
    (name -> local file) if given, and register it as a new version of `name`."""
    with tracking(url, token):
        import mlflow

        path = workdir / f"{name.replace('.', '_')}_model.py"
        path.write_text(code)
        with mlflow.start_run():
            mlflow.pyfunc.log_model(name="model", python_model=str(path), registered_model_name=name,
                                    pip_requirements=[f"mlflow=={mlflow.__version__}"], artifacts=artifacts)
