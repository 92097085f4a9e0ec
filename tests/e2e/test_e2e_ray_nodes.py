"""Replicas that need nothing but the cluster: a ladle server with LADLE_RUNTIME=ray and
LADLE_RAY_PREPARE_ON_NODE on a two-node Ray cluster started here, each node with its own temp
dir and its own cache dir (LADLE_RAY_NODE_DIR), the replica pinned to the second node by a
custom resource the head lacks. The model's files exist only in the e2e server's registry
(this server's registry is that one, through LADLE_MLFLOW_TRACKING_URI): the replica's node
downloads them itself over HTTP with its own short-lived token, so nothing works through a
path the server wrote."""

from __future__ import annotations

import re
import secrets

import pytest
from e2e_support import IRIS, LadleServer, wait_for

from ladle.testing.ray_cluster import ray_cluster

pytest.importorskip("ray", reason="the Ray runtime's tests need ray[serve] (in the test extra)")
pytestmark = pytest.mark.ray

NAME, ENTITY = "ray-far-iris", "iris-1"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    work = tmp_path_factory.mktemp("ray-nodes")
    with ray_cluster(work, num_cpus=1, head_env={"LADLE_RAY_NODE_DIR": str(work / "head-cache")}) as c:
        c.add_node(work / "far", num_cpus=2, resources={"ladle_far": 1},
                   env={"LADLE_RAY_NODE_DIR": str(work / "far-cache")})
        yield c, work


@pytest.fixture(scope="module")
def far_server(server, models, cluster, tmp_path_factory):
    c, _ = cluster
    home = tmp_path_factory.mktemp("ray-far-server")
    srv = LadleServer(home, "dapi-far-admin-" + secrets.token_hex(8), extra_env={
        "LADLE_RUNTIME": "ray", "LADLE_RAY_PREPARE_ON_NODE": "true",
        "LADLE_RAY_REPLICA_RESOURCES": '{"ladle_far": 0.01}',
        "LADLE_MLFLOW_TRACKING_URI": server.url, "LADLE_MLFLOW_TRACKING_TOKEN": server.admin_token,
        "LADLE_FOUNDATION_ENDPOINTS": "false", "LADLE_RECONCILE_INTERVAL_S": "0.3", **c.env})
    srv.start()
    try:
        yield srv, home
    finally:
        srv.stop()


def test_a_replica_on_another_node_fetches_its_model_from_the_registry_itself(server, far_server, cluster,
                                                                             sample, v1_model):
    srv, home = far_server
    _, work = cluster
    want = [int(v) for v in v1_model.predict(sample)]
    with srv.client() as c:
        r = c.post("/api/2.0/serving-endpoints", json={"name": NAME, "config": {"served_entities": [
            {"entity_name": IRIS, "entity_version": "1", "workload_size": "Small", "scale_to_zero_enabled": False}]}})
        assert r.status_code == 200, r.text

        def state() -> str:
            ep = c.get(f"/api/2.0/serving-endpoints/{NAME}").json()
            assert ep["state"]["config_update"] != "UPDATE_FAILED", ep
            return ep["state"]["ready"]

        wait_for(lambda: state() == "READY", 150, interval=1, what="READY on the far node")
        r = c.post(f"/serving-endpoints/{NAME}/invocations", json={"dataframe_records": sample.to_dict("records")})
        assert r.status_code == 200 and r.json()["predictions"] == want, r.text
        build = c.get(f"/api/2.0/serving-endpoints/{NAME}/served-models/{ENTITY}/build-logs").json()["logs"]
    far_cache, head_cache = work / "far-cache", work / "head-cache"
    # the files came to the far node's own cache, and nowhere else
    assert (far_cache / "models" / IRIS / "1" / "MLmodel").is_file()
    assert not (head_cache / "models").exists()
    assert not list(home.rglob("MLmodel")), "the server itself downloaded the model"
    # the build log says which node did what, and with which credentials: the node's lines
    # reach the server through the cluster (relayed, marked with the node), not a shared path
    assert "Replicas fetch model 'main.default.iris' version 1 from the registry" in build, build
    node = re.search(r"\[(Ray node [0-9a-f]{12})\] .* prepares 'iris-1' itself: model cache (\S+),", build)
    assert node and node.group(2) == str(far_cache / "models"), build
    assert f"[{node.group(1)}] Downloaded" in build
    assert "own token (reads model 'main.default.iris' version 1 only)" in build
    assert srv.admin_token not in build and server.admin_token not in build
    # the replica's runtime log stays on the far node too: the logs route shows its lines,
    # relayed through the cluster and marked with the same node
    ready = re.compile(rf"^\[{node.group(1)}\] \S+ \[ladle\] replica pid \d+ ready", re.M)
    with srv.client() as c:
        def runtime_log() -> str:
            return c.get(f"/api/2.0/serving-endpoints/{NAME}/served-models/{ENTITY}/logs").json()["logs"]

        wait_for(lambda: ready.search(runtime_log()), 20, interval=0.5, what="the far node's runtime log")
        assert c.delete(f"/api/2.0/serving-endpoints/{NAME}").status_code == 200
