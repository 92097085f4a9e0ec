"""The demo's model: a scikit-learn classifier of the iris data set saved as an MLflow model
once per machine (under ladle's cache directory, per version of Python, MLflow,
scikit-learn and skops), and registered from those files through MLflow's REST API.

Why not `mlflow.sklearn.log_model` each time: importing MLflow, scikit-learn and skops costs
the demo's process seconds of CPU, on the same cores as the embedded registry's and the
replica template's own imports, all of it before the model is even registered. A saved model
is a directory of plain files; registering it takes a run, an upload of each file and a model
version, which are MLflow's documented REST calls (runs/create, mlflow-artifacts PUT,
model-versions/create) made with httpx, already imported.
"""

from __future__ import annotations

import gc
import os
import secrets
import shutil
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from urllib.parse import quote, urlparse

import httpx

MODEL_NAME = "demo-iris"
LIBRARIES = ("mlflow", "scikit-learn", "skops")
FORMAT = "1"   # bump when the saved model changes: older saved ones are then left unused


def versions() -> dict[str, str]:
    """The installed versions the saved model depends on (package metadata: no import)."""
    return {lib: metadata.version(lib) for lib in LIBRARIES}


def saved_path(cache_dir: Path) -> Path:
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    key = "-".join([f"py{py}", *(f"{k}{v}" for k, v in versions().items()), f"f{FORMAT}"])
    return cache_dir / "demo-model" / key


def cached(cache_dir: Path) -> Path | None:
    """The saved model for these versions, if a demo saved it before."""
    path = saved_path(cache_dir)
    return path if (path / "MLmodel").is_file() else None


def save(cache_dir: Path) -> Path:
    """Train the model and save it under the cache (written under a temporary name, then
    renamed into place: a saved model is complete or absent). A cache that cannot be written
    gets the model in a temporary directory instead."""
    dest = saved_path(cache_dir)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        parent = dest.parent
    except OSError:
        parent = Path(tempfile.mkdtemp(prefix="ladle-demo-model-"))
        dest = parent / "model"
    tmp = parent / f".{dest.name}.{secrets.token_hex(6)}.tmp"
    try:
        _train_and_save(tmp)
        try:
            os.replace(tmp, dest)
        except OSError:   # another demo saved it first (a non-empty directory is not replaced)
            if not (dest / "MLmodel").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _train_and_save(path: Path) -> None:
    gc.disable()   # imports with the cyclic collector off: a tenth of their CPU, on shared cores
    try:
        import mlflow.sklearn
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression
    finally:
        gc.enable()

    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=300).fit(X, y)
    # Requirements named here: otherwise MLflow infers them by loading the model in a new
    # process (seconds)
    reqs = [f"{lib}=={v}" for lib, v in versions().items()]
    with warnings.catch_warnings():   # MLflow's hint about integer outputs, not the user's concern
        warnings.simplefilter("ignore", UserWarning)
        mlflow.sklearn.save_model(model, str(path), input_example=X.head(3), pip_requirements=reqs)


def register(c: httpx.Client, model_dir: Path, name: str = MODEL_NAME) -> str:
    """Register the files of `model_dir` as a new version of `name` in the registry `c`
    talks to (ladle's server, which proxies it); returns the version."""
    run = _call(c, "runs/create", {"experiment_id": "0", "run_name": "ladle-demo",
                                   "start_time": int(time.time() * 1000)})["run"]["info"]
    root = urlparse(run["artifact_uri"]).path.strip("/")   # mlflow-artifacts:/0/<run>/artifacts

    def upload(f: Path) -> None:
        rel = f.relative_to(model_dir).as_posix()
        r = c.put(f"/api/2.0/mlflow-artifacts/artifacts/{quote(f'{root}/model/{rel}')}", content=f.read_bytes())
        r.raise_for_status()

    with ThreadPoolExecutor(4) as pool:   # a few small files: their round trips overlap
        list(pool.map(upload, sorted(p for p in model_dir.rglob("*") if p.is_file())))
    _call(c, "runs/update", {"run_id": run["run_id"], "status": "FINISHED", "end_time": int(time.time() * 1000)})
    r = c.post("/api/2.0/mlflow/registered-models/create", json={"name": name})
    if r.status_code != 200 and "RESOURCE_ALREADY_EXISTS" not in r.text:
        r.raise_for_status()
    mv = _call(c, "model-versions/create", {"name": name, "run_id": run["run_id"],
                                            "source": f"{run['artifact_uri']}/model"})["model_version"]
    for _ in range(600):   # a SQL-backed registry makes it READY at once; another may take a moment
        if mv.get("status", "READY") != "PENDING_REGISTRATION":
            break
        time.sleep(0.1)
        mv = c.get("/api/2.0/mlflow/model-versions/get",
                   params={"name": name, "version": mv["version"]}).json()["model_version"]
    if mv.get("status", "READY") != "READY":
        raise RuntimeError(f"model version {mv['version']} of {name} is {mv.get('status')}: "
                           f"{mv.get('status_message', '')}")
    return str(mv["version"])


def _call(c: httpx.Client, path: str, body: dict) -> dict:
    r = c.post(f"/api/2.0/mlflow/{path}", json=body)
    if r.status_code != 200:
        raise RuntimeError(f"registry call {path} answered {r.status_code}: {r.text[:300]}")
    return r.json()
