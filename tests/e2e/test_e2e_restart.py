"""A server restart on the same LADLE_HOME brings every endpoint back, READY and serving,
with its tags and permissions. Runs last: it restarts the shared server."""

from __future__ import annotations

import pytest

from e2e_support import client, wait_for

pytestmark = pytest.mark.restarts_server


def test_restart_brings_endpoints_back_serving_with_tags_and_permissions(
        server, admin, iris_endpoint, sample, v1_model):
    name, eid = "iris", iris_endpoint["id"]
    assert admin.patch(f"/api/2.0/serving-endpoints/{name}/tags", json={
        "add_tags": [{"key": "restart", "value": "survives"}]}).status_code == 200
    assert admin.patch(f"/api/2.0/permissions/serving-endpoints/{eid}", json={"access_control_list": [
        {"user_name": "dora", "permission_level": "CAN_VIEW"}]}).status_code == 200
    before = admin.get(f"/api/2.0/serving-endpoints/{name}").json()
    perms_before = admin.get(f"/api/2.0/permissions/serving-endpoints/{eid}").json()
    old_replicas = {p.pid for p in server.replica_procs(eid)}
    assert old_replicas

    server.restart()

    assert not any(p.pid in old_replicas for p in server.replica_procs(eid)), "old replicas are gone"
    records = {"dataframe_records": sample.to_dict(orient="records")}
    with client(server, timeout=120) as c:
        def ready():
            ep = c.get(f"/api/2.0/serving-endpoints/{name}").json()
            return ep if ep["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"} else None

        after = wait_for(ready, 180, interval=0.5, what="iris READY after the restart")
        r = c.post(f"/serving-endpoints/{name}/invocations", json=records)
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == v1_model.predict(sample).tolist()
        assert r.headers["served-model-name"] == "iris-1"
        assert after["id"] == eid
        assert after["tags"] == before["tags"] and {"key": "restart", "value": "survives"} in after["tags"]
        assert after["config"] == {**before["config"], "served_entities": after["config"]["served_entities"]}
        assert [e["name"] for e in after["config"]["served_entities"]] == ["iris-1"]
        assert after["creation_timestamp"] == before["creation_timestamp"]
        assert c.get(f"/api/2.0/permissions/serving-endpoints/{eid}").json() == perms_before
