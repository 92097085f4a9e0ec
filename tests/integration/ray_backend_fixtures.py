"""The Ray backend tests' shared parts (tests/integration/test_ray_backend.py): a real local
Ray cluster for the module, the saved models, the backends that drive it (the reconciler's
owner `leader`, one that prepares on the node `on_node`, followers) and the groups a test
ensures (`iris1`, `iris2`, `streamer`). Fixtures are module-scoped: a module that imports them
owns one cluster."""

from __future__ import annotations

import json
import os
import time

import pytest
import pytest_asyncio

pytest.importorskip("ray.serve", reason="the Ray runtime needs the `ray` extra (ray[serve])")

from ladle.control.states import GroupState  # noqa: E402
from ladle.runtimes import ray_seal  # noqa: E402
from ladle.runtimes.base import GroupSpec  # noqa: E402
from ladle.runtimes.ray import RayBackend  # noqa: E402
from ladle.testing.dir_preparer import DirPreparer  # noqa: E402
from ladle.testing.model_code import STREAMING_PYFUNC_CODE, broken_model_code  # noqa: E402
from ladle.testing.waiting import wait_until_async  # noqa: E402

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROWS = [[5.1, 3.5, 1.4, 0.2], [4.9, 3.0, 1.4, 0.2], [5.9, 3.0, 4.2, 1.5], [6.3, 2.5, 5.0, 1.9],
        [6.7, 3.0, 5.2, 2.3]]
BROKEN_MARKER = "ray-test-model-cannot-load-9f3a"
STREAMER_CODE, BROKEN_CODE = STREAMING_PYFUNC_CODE, broken_model_code(BROKEN_MARKER)

def spec_for(model: str, entity: str, env: dict[str, str] | None = None) -> GroupSpec:
    return GroupSpec(key=f"raytest01-{entity}-0123456789ab", endpoint_id="raytest01", endpoint_name="ray-ep",
                     entity_name=entity, model_name=model, model_version="1", concurrency=2,
                     env_vars=tuple(sorted((env or {}).items())))


async def until(pred, timeout: float, what: str):
    return await wait_until_async(pred, timeout, interval=0.2, what=what)


def frame_body(rows) -> bytes:
    return json.dumps({"dataframe_split": {"columns": COLUMNS, "data": rows}}).encode()


JSON = {"content_type": "application/json"}


# -- fixtures -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ray_cluster():
    """A real, small local Ray cluster owned by this test process; its GCS address."""
    import signal

    import ray

    saved_env, saved_sigterm = dict(os.environ), signal.getsignal(signal.SIGTERM)
    started = time.monotonic()
    ray_seal.seal_key()  # in os.environ before the cluster starts: its nodes inherit it
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20,
             log_to_driver=False, configure_logging=False)
    address = ray.get_runtime_context().gcs_address
    print(f"ray cluster up in {time.monotonic() - started:.1f}s at {address}")
    yield address
    from ray import serve

    try:
        serve.shutdown()
    finally:
        ray.shutdown()
        # ray.init sets PYTHONBREAKPOINT, RAY_AUTH_MODE, ... and a SIGTERM handler: put them back
        os.environ.clear()
        os.environ.update(saved_env)
        signal.signal(signal.SIGTERM, saved_sigterm)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    import mlflow
    import pandas as pd
    import sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("ray-models")
    reqs = [f"mlflow=={mlflow.__version__}"]
    x, y = load_iris(return_X_y=True, as_frame=True)
    x.columns = COLUMNS
    est = LogisticRegression(max_iter=500).fit(x, y)
    mlflow.sklearn.save_model(est, str(root / "iris"), input_example=x.head(3),
                              pip_requirements=reqs + [f"scikit-learn=={sklearn.__version__}"])
    for name, code in (("streamer", STREAMER_CODE), ("broken", BROKEN_CODE)):
        src = root / f"{name}_model.py"
        src.write_text(code)
        mlflow.pyfunc.save_model(str(root / name), python_model=str(src), pip_requirements=reqs)
    expected = [int(v) for v in est.predict(pd.DataFrame(ROWS, columns=COLUMNS))]
    return {"dirs": {n: str(root / n) for n in ("iris", "streamer", "broken")}, "iris_expected": expected,
            "root": root}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def leader(ray_cluster, models, tmp_path_factory):
    """The reconciler owner's backend (connects to the running cluster by its address)."""
    logs = tmp_path_factory.mktemp("ray-logs")
    b = RayBackend(DirPreparer(models["dirs"], str(models["root"] / "envs")), logs, address=ray_cluster,
                   replica_cpus=0.25, start_retries=1, start_timeout=120.0, health_check_period_s=2.0,
                   poll_interval_s=0.25)
    b.kicks = 0

    def kick():
        b.kicks += 1

    b.set_notify(kick)
    b.logs_path = logs
    yield b
    await b.close()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def on_node(ray_cluster, models, leader):
    """A backend whose replicas prepare the model themselves, on the node that runs them."""
    b = RayBackend(DirPreparer(models["dirs"], str(models["root"] / "envs")), leader.logs_path,
                   address=ray_cluster, prepare_in_replica=True, replica_cpus=0.25, start_retries=1,
                   start_timeout=120.0, poll_interval_s=0.25)
    yield b
    await b.close()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def follower(ray_cluster):
    """A second ladle server's backend: it deploys nothing, it only reaches groups by key."""
    b = RayBackend(None, None, address=ray_cluster, poll_interval_s=0.25)
    yield b
    await b.close()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def through_handle(ray_cluster):
    """A follower that always sends through the Serve handle (direct=False), as a server on
    another machine does."""
    b = RayBackend(None, None, address=ray_cluster, poll_interval_s=0.25, direct=False)
    yield b
    await b.close()


IRIS = spec_for("iris", "iris")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def started(leader, on_node, models, tmp_path_factory):
    """iris (prepared by the server) and the streamer (prepared on its node) ensured at once
    (they start in parallel), both READY."""
    marker = tmp_path_factory.mktemp("marker") / "chunks.txt"
    streamer = spec_for("streamer", "streamer", {"LADLE_TEST_MARKER": str(marker)})
    t0 = time.monotonic()
    leader.ensure(IRIS, 1)
    on_node.ensure(streamer, 1)
    assert leader.observe()[IRIS.key].state == GroupState.BUILDING
    for b, spec in ((leader, IRIS), (on_node, streamer)):
        await until(lambda b=b, s=spec: b.observe()[s.key].state in (GroupState.READY, GroupState.FAILED),
                    150, f"{spec.entity_name} to be READY")
        obs = b.observe()[spec.key]
        assert obs.state == GroupState.READY, obs.message
    print(f"two groups READY in {time.monotonic() - t0:.1f}s")
    return {"streamer": streamer, "marker": marker}


async def running(backend: RayBackend, spec: GroupSpec, n: int) -> None:
    """`spec` with exactly `n` READY replicas, each reachable: ensured again when a test before
    this one scaled or stopped it (what the reconciler does every tick)."""
    backend.ensure(spec, n)

    def at_n() -> bool:
        obs, group = backend.observe().get(spec.key), backend.group(spec.key)
        return (obs is not None and obs.state == GroupState.READY and obs.ready == n
                and group is not None and len(group.replicas()) == n)

    await until(at_n, 150, f"{spec.entity_name} with {n} replica(s) READY")


@pytest_asyncio.fixture(loop_scope="module")
async def iris1(leader, started):
    await running(leader, IRIS, 1)


@pytest_asyncio.fixture(loop_scope="module")
async def iris2(leader, started):
    await running(leader, IRIS, 2)


@pytest_asyncio.fixture(loop_scope="module")
async def streamer(on_node, started) -> GroupSpec:
    await running(on_node, started["streamer"], 1)
    return started["streamer"]
