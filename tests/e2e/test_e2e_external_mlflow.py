"""A user with their own MLflow server points ladle at it with LADLE_MLFLOW_TRACKING_URI:
ladle starts no registry of its own, serves the models registered there, and its
/api/2.0/mlflow routes reach that server."""

from __future__ import annotations

import secrets
import sys

import pytest

from ladle.testing.process import ChildProcess, LadleProcess, child_env, free_port
from ladle.testing.registry import tracking

from e2e_support import COLUMNS, client, create_endpoint

MODEL = "team.models.iris_elsewhere"


@pytest.fixture(scope="module")
def own_mlflow_proc(tmp_path_factory):
    """A plain `mlflow server` (SQLite, artifacts served), as a team would already run;
    started, not yet awaited (ladle boots meanwhile)."""
    root = tmp_path_factory.mktemp("own-mlflow")
    port = free_port()
    proc = ChildProcess([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                         f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts"),
                         "--serve-artifacts", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                        root / "mlflow.log", child_env())
    proc.start()
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def own_mlflow(own_mlflow_proc) -> str:
    proc, url = own_mlflow_proc
    proc.wait_http(url + "/health", 180, interval=0.25)
    return url


@pytest.fixture(scope="module")
def registered(own_mlflow, iris_data):
    import mlflow
    import sklearn
    from sklearn.linear_model import LogisticRegression

    x, y = iris_data
    with tracking(own_mlflow, "not-needed-by-a-plain-mlflow-server"):
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(LogisticRegression(max_iter=500).fit(x, y), name="model",
                                            input_example=x.head(3), registered_model_name=MODEL,
                                            pip_requirements=[f"scikit-learn=={sklearn.__version__}"])
        return mlflow.pyfunc.load_model(f"models:/{MODEL}/{info.registered_model_version}")


@pytest.fixture(scope="module")
def ladle_on_own_mlflow(own_mlflow_proc, tmp_path_factory, request):
    """ladle on the user's MLflow. It boots while MLflow starts and the model is registered
    there (`registered`); it is ready once its registry routes answer, so after MLflow."""
    _, url = own_mlflow_proc
    srv = LadleProcess(tmp_path_factory.mktemp("ladle-own-mlflow"), "dapi-own-" + secrets.token_hex(8),
                       {"LADLE_MLFLOW_TRACKING_URI": url, "LADLE_WARM_SPARES": "0",
                        "LADLE_FOUNDATION_ENDPOINTS": "false"})
    srv.start(while_starting=lambda: request.getfixturevalue("registered"))
    yield srv
    srv.stop()


def test_ladle_serves_a_model_from_the_users_own_mlflow(ladle_on_own_mlflow, registered, sample):
    srv = ladle_on_own_mlflow
    cmds = [" ".join(p.cmdline()) for p in srv.descendants()]
    assert not any("mlflow server" in c or "mlflow.server" in c for c in cmds), cmds   # no registry of its own
    with client(srv, timeout=60) as http:
        found = http.get("/api/2.0/mlflow/registered-models/get", params={"name": MODEL})
        assert found.status_code == 200 and found.json()["registered_model"]["name"] == MODEL
        create_endpoint(http, {"name": "elsewhere", "config": {"served_entities": [
            {"entity_name": MODEL, "entity_version": "1", "workload_size": "Small",
             "scale_to_zero_enabled": False}]}}, timeout=240)
        r = http.post("/serving-endpoints/elsewhere/invocations",
                      json={"dataframe_split": {"columns": COLUMNS, "data": sample.values.tolist()}})
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == registered.predict(sample).tolist()
        missing = http.post("/api/2.0/serving-endpoints", json={"name": "nope", "config": {"served_entities": [
            {"entity_name": MODEL, "entity_version": "9"}]}})
        assert missing.status_code == 400, missing.text
        assert missing.json()["error_code"] == "INVALID_PARAMETER_VALUE" and "9" in missing.json()["message"]
