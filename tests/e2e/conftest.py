"""End-to-end tier: the real `ladle server` on a free port, driven by the real clients
(databricks-sdk, MLflow's deployments client, the `ladle` CLI as a subprocess, httpx).

Everything expensive is session-scoped: one server (with its embedded MLflow registry),
the registered models, and a shared `iris` endpoint. Tests that restart the server are
marked `restarts_server` and run last.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import pytest

from ladle.testing.registry import register_code_model, tracking

from e2e_support import (
    BROKEN, BROKEN_MODEL_CODE, COLUMNS, IRIS, LadleServer, client, create_endpoint, entity,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "restarts_server: restarts the shared e2e server; runs last")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
            if item.get_closest_marker("timeout") is None:  # session fixtures start real processes
                item.add_marker(pytest.mark.timeout(600))
    items.sort(key=lambda i: 1 if i.get_closest_marker("restarts_server") else 0)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("ladle-home")
    srv = LadleServer(home, "dapi-e2e-admin-" + secrets.token_hex(8),
                      extra_env={"LADLE_SCALE_TO_ZERO_IDLE_S": "3",
                                 # autoscaling in seconds (test_e2e_autoscale.py)
                                 "LADLE_AUTOSCALE_TARGET_IN_FLIGHT": "1", "LADLE_AUTOSCALE_UP_WINDOW_S": "1",
                                 "LADLE_AUTOSCALE_DOWN_WINDOW_S": "3", "LADLE_AUTOSCALE_COOLDOWN_S": "3"})
    srv.start(while_starting=_preimport)
    yield srv
    srv.stop()


def _preimport() -> None:
    """The heavy imports the tests need, done while the server boots."""
    import databricks.sdk  # noqa: F401
    import mlflow.pyfunc  # noqa: F401
    import mlflow.sklearn  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.tree  # noqa: F401


@pytest.fixture(scope="session")
def admin(server: LadleServer):
    with client(server) as c:
        yield c


@pytest.fixture(scope="session")
def iris_data():
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    x = data.frame.drop(columns=["target"])
    x.columns = COLUMNS
    return x, data.frame["target"]


@pytest.fixture(scope="session")
def sample(iris_data):
    """Five rows spanning the three classes."""
    x, _ = iris_data
    return x.iloc[[0, 1, 60, 110, 149]].reset_index(drop=True)


@pytest.fixture(scope="session")
def models(server: LadleServer, iris_data, tmp_path_factory: pytest.TempPathFactory):
    """Register iris v1 (LogisticRegression), v2 (DecisionTree) and a model whose
    load_context raises, with the real MLflow client against ladle's registry."""
    import mlflow
    import sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    x, y = iris_data
    reqs = [f"mlflow=={mlflow.__version__}", f"scikit-learn=={sklearn.__version__}"]
    trusted = {"skops_trusted_types": ["sklearn.tree._tree.Tree"]}
    with tracking(server.url, server.admin_token):
        for est, extra in ((LogisticRegression(max_iter=500), {}),
                           (DecisionTreeClassifier(max_depth=3, random_state=0), trusted)):
            est.fit(x, y)
            with mlflow.start_run():
                mlflow.sklearn.log_model(est, name="model", input_example=x.head(3),
                                         registered_model_name=IRIS, pip_requirements=reqs, **extra)
        register_code_model(server.url, server.admin_token, BROKEN, BROKEN_MODEL_CODE,
                            tmp_path_factory.mktemp("broken"))
        yield {"iris": IRIS, "broken": BROKEN}


@pytest.fixture(scope="session")
def v1_model(models):
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(f"models:/{IRIS}/1")


@pytest.fixture(scope="session")
def v2_model(models):
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(f"models:/{IRIS}/2")


@pytest.fixture(scope="session")
def iris_endpoint(admin, models):
    """The shared endpoint `iris` serving version 1 (served entity `iris-1`)."""
    return create_endpoint(admin, {"name": "iris", "config": {"served_entities": [entity("1")]}})


@pytest.fixture(scope="session")
def workspace(server: LadleServer):
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    cfg = Config(host=server.url, token=server.admin_token, retry_timeout_seconds=30,
                 http_timeout_seconds=60)
    return WorkspaceClient(config=cfg)


@pytest.fixture(scope="session")
def wait_timeout() -> timedelta:
    return timedelta(minutes=2)


@pytest.fixture()
def databricks_env(server: LadleServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """DATABRICKS_HOST/TOKEN for the CLI and MLflow's deployments client; no config file."""
    monkeypatch.setenv("DATABRICKS_HOST", server.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", server.admin_token)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-databrickscfg"))
    monkeypatch.setenv("HOME", str(tmp_path))
    return {**os.environ}
