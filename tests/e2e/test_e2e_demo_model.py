"""The demo's model (ladle/demo/model.py): saved once under the cache, then registered from
those files through MLflow's REST API against ladle's registry; MLflow's own client loads the
registered version and it predicts as the trained model does."""

from __future__ import annotations

import secrets

import httpx

from ladle.demo import model as demo_model
from ladle.testing.registry import tracking

from e2e_support import LadleServer

SETOSA = {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4, "petal width (cm)": 0.2}


def test_saved_once_and_registered_over_rest(server: LadleServer, tmp_path):
    import mlflow.pyfunc
    import pandas as pd

    cache = tmp_path / "cache"
    assert demo_model.cached(cache) is None
    saved = demo_model.save(cache)
    assert demo_model.cached(cache) == saved
    assert (saved / "MLmodel").is_file() and not list(saved.parent.glob(".*.tmp"))

    name = f"demo-iris-e2e-{secrets.token_hex(3)}"
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"},
                      timeout=60) as c:
        assert demo_model.register(c, saved, name) == "1"
        assert demo_model.register(c, saved, name) == "2"      # the registered model exists: a new version
        got = c.get("/api/2.0/mlflow/model-versions/get", params={"name": name, "version": "2"}).json()
    assert got["model_version"]["status"] == "READY"
    with tracking(server.url, server.admin_token):
        loaded = mlflow.pyfunc.load_model(f"models:/{name}/2")
    assert list(loaded.predict(pd.DataFrame([SETOSA]))) == [0]
