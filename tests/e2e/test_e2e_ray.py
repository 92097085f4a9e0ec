"""Two real ladle servers with LADLE_RUNTIME=ray on one PostgreSQL and one Ray cluster (started
here with `ray start --head`): replicas are Ray Serve deployments, so a model endpoint made on
one server is served by both, keeps serving when the server that ran the reconciler stops, and
the other server takes the reconciler over, adopting the application: not one replica
restarts (their worker PIDs stay). The model is the e2e iris model in the e2e server's registry
(both servers use it through LADLE_MLFLOW_TRACKING_URI)."""

from __future__ import annotations

import time

import pytest
from e2e_support import RECONCILER_LINE, server_pair, wait_for

from ladle.testing.process import LadleProcess
from ladle.testing.ray_cluster import RayCluster, ray_cluster

pytest.importorskip("ray", reason="the Ray runtime's tests need ray[serve] (in the test extra)")
pytestmark = pytest.mark.ray

NAME = "ray-iris"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A Ray head on loopback with token authentication (Ray's default)."""
    with ray_cluster(tmp_path_factory.mktemp("ray")) as c:
        yield c


@pytest.fixture(scope="module")
def pair(server, models, postgres, cluster, tmp_path_factory):
    with server_pair(server, postgres.new_database(), tmp_path_factory.mktemp("ray-servers"),
                     LADLE_RUNTIME="ray", **cluster.env) as (a, b):
        yield a, b


def worker_pids(cluster: RayCluster) -> set[int]:
    """The ladle worker processes the cluster's Serve replicas run."""
    pids = set()
    for p in cluster.processes():
        try:
            if "ladle.replica.worker" in " ".join(p.cmdline()):
                pids.add(p.pid)
        except Exception:   # exited meanwhile
            pass
    return pids


def _predict(srv: LadleProcess, sample) -> tuple[int, dict]:
    with srv.client() as c:
        r = c.post(f"/serving-endpoints/{NAME}/invocations", json={"dataframe_records": sample.to_dict("records")})
        return r.status_code, (r.json() if r.headers.get("content-type", "").startswith("application/json") else {})


def test_a_model_endpoint_on_ray_is_served_by_both_servers_and_survives_its_owner(pair, cluster, sample, v1_model):
    a, b = pair
    want = [int(v) for v in v1_model.predict(sample)]
    with a.client() as ca:
        r = ca.post("/api/2.0/serving-endpoints", json={"name": NAME, "config": {"served_entities": [
            {"entity_name": "main.default.iris", "entity_version": "1", "workload_size": "Small",
             "scale_to_zero_enabled": False}]}})
        assert r.status_code == 200, r.text
    with b.client() as cb:
        wait_for(lambda: cb.get(f"/api/2.0/serving-endpoints/{NAME}").json()["state"]["ready"] == "READY", 180,
                 interval=1, what="READY on Ray, seen through b")
    for srv in (a, b):   # each server's view of the cluster catches up within a poll or two
        wait_for(lambda: _predict(srv, sample)[0] == 200, 30, what=f"{srv.url} serving")
    for srv in (a, b, a, b):
        code, out = _predict(srv, sample)
        assert code == 200 and out["predictions"] == want, out
    owner = next(s for s in (a, b) if RECONCILER_LINE in s.output())
    other = b if owner is a else a
    before = worker_pids(cluster)
    assert before, "no ladle worker process found in the Ray cluster"
    owner.stop()
    codes = [_predict(other, sample) for _ in range(20)]     # the replicas live in Ray, not in `owner`
    assert all(c == 200 and out["predictions"] == want for c, out in codes), codes
    wait_for(lambda: RECONCILER_LINE in other.output(), 30, what="the other server taking over")
    # the new owner adopts the application (same model, version, environment and settings):
    # requests keep being answered by the very same replicas
    with other.client() as c:
        build = lambda: c.get(f"/api/2.0/serving-endpoints/{NAME}/served-models/iris-1/build-logs").json()["logs"]
        wait_for(lambda: "adopted with" in build(), 30, what="the new owner adopting the application")
    deadline, answered = time.monotonic() + 5, []
    while time.monotonic() < deadline:
        answered.append(_predict(other, sample))
    assert all(c == 200 and out["predictions"] == want for c, out in answered), \
        [c for c, _ in answered if c != 200][:5]
    assert before <= worker_pids(cluster), "a replica restarted on takeover"
    with other.client() as c:
        logs = c.get(f"/api/2.0/serving-endpoints/{NAME}/served-models/iris-1/build-logs").json()["logs"]
    assert "Downloading artifacts" not in logs   # nothing rebuilt
    with other.client() as c:
        assert c.get(f"/api/2.0/serving-endpoints/{NAME}").json()["state"]["ready"] == "READY"
        assert c.delete(f"/api/2.0/serving-endpoints/{NAME}").status_code == 200
    wait_for(lambda: _predict(other, sample)[0] == 404, 60, what="the endpoint gone")
