"""A server whose LADLE_HOME is deeper than a Unix socket's path allows (107 bytes) still
starts replicas: their sockets are in its short socket directory (runtimes/socket_dir.py),
which LADLE_HOME/run/sockets links to, confined workers do not see, and shutdown removes."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest

from ladle.config import Settings
from ladle.runtimes.local import LocalBackend
from ladle.runtimes.sandbox import make_sandbox
from ladle.runtimes.socket_dir import SUN_PATH_MAX, remove_socket_dir, socket_dir
from ladle.schemas.replicas import GroupSpec, Prepared

ROW = [5.1, 3.5, 1.4, 0.2]
COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


@pytest.fixture(scope="module")
def iris_dir(tmp_path_factory) -> str:
    import mlflow.sklearn
    import sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True, as_frame=True)
    d = tmp_path_factory.mktemp("models") / "iris"
    mlflow.sklearn.save_model(LogisticRegression(max_iter=500).fit(x, y), str(d), input_example=x.head(3),
                              pip_requirements=[f"mlflow=={mlflow.__version__}",
                                                f"scikit-learn=={sklearn.__version__}"])
    return str(d)


def test_a_replica_starts_and_serves_under_a_150_character_home(iris_dir, tmp_path):
    home = tmp_path / ("deep-ladle-home-" * 12)[: max(1, 150 - len(str(tmp_path)) - 1)]
    home.mkdir()
    assert len(str(home)) >= 150
    run = home / "run"
    spec = GroupSpec(key="ep-0123456789abcdef0123456789abcdef-iris-1", endpoint_id="ep-1", endpoint_name="iris",
                     entity_name="iris-1", model_name="iris", model_version="1", concurrency=2)

    async def prepare(_spec, _log) -> Prepared:
        return Prepared(sys.executable, iris_dir)

    async def scenario() -> tuple[str, dict]:
        sockets = socket_dir(run)
        sandbox = make_sandbox("auto", Settings().worker_user, home, also_hide=[sockets])
        backend = LocalBackend(prepare, run, home / "logs", 120.0, warm_spares=0, sandbox=sandbox,
                               template=False, socket_dir=sockets)
        try:
            backend.ensure(spec, 1)
            group = backend.group(spec.key)
            assert await group.wait_ready(120.0), group.observe().message
            replica = group.replicas()[0]
            assert os.readlink(run / "sockets") == str(sockets) == os.path.dirname(replica.socket_path)
            body = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [ROW]}}).encode()
            reply = await replica.call({"content_type": "application/json"}, body)
            assert reply.status == 200
            return str(replica.socket_path), json.loads(await reply.read())
        finally:
            await backend.close()
            remove_socket_dir(run)

    path, answer = asyncio.run(scenario())
    assert answer == {"predictions": [0]}                       # setosa
    assert len(os.fsencode(path)) <= SUN_PATH_MAX and not path.startswith(str(home))
    assert not os.path.exists(os.path.dirname(path)) and not (run / "sockets").is_symlink()   # removed
