from collections import Counter

from tests.integration.conftest import ADMIN, create, wait_not_updating

API = "/api/2.0/serving-endpoints"


def test_create_get_list_delete(client):
    r = client.post(API, json={"name": "ep", "config": {"name": "ep", "served_entities": [
        {"entity_name": "m", "entity_version": 1}]}})
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "ep" and len(body["id"]) == 32
    assert body["state"] == {"ready": "NOT_READY", "config_update": "IN_PROGRESS"}
    assert body["pending_config"]["served_entities"][0]["name"] == "m-1"
    got = wait_not_updating(client, "ep")
    assert got["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"}
    assert "pending_config" not in got
    assert got["config"]["served_entities"][0]["state"]["deployment"] == "DEPLOYMENT_READY"
    assert got["permission_level"] == "CAN_MANAGE"
    assert isinstance(got["creation_timestamp"], int)
    listed = client.get(API + "/").json()["endpoints"]
    assert [e["name"] for e in listed] == ["ep"]
    assert listed[0]["config"]["served_entities"][0]["entity_name"] == "m"
    assert client.delete(f"{API}/ep").json() == {}
    r = client.get(f"{API}/ep")
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert r.json()["message"] == "Endpoint with name 'ep' does not exist. Verify the name with `serving-endpoints list`."


def test_query_routes_and_header(client):
    create(client)
    r = client.post("/serving-endpoints/ep/invocations", json={"inputs": [1]})
    assert r.status_code == 200 and r.headers["served-model-name"] == "m-1"
    assert r.json() == {"predictions": ["m-1"]}


def test_traffic_split_follows_percentages(client):
    create(client, entities=[{"entity_name": "m", "entity_version": "1"}, {"entity_name": "m", "entity_version": "2"}],
           traffic=[{"served_entity_name": "m-1", "traffic_percentage": 80},
                    {"served_entity_name": "m-2", "traffic_percentage": 20}])
    seen = Counter(client.post("/serving-endpoints/ep/invocations", json={"inputs": [1]}).headers["served-model-name"]
                   for _ in range(400))
    assert 0.7 < seen["m-1"] / 400 < 0.9
    r = client.post("/serving-endpoints/ep/served-models/m-2/invocations", json={"inputs": [1]})
    assert r.headers["served-model-name"] == "m-2"


def test_update_config_swaps_traffic_and_refuses_concurrent_update(client, backend):
    create(client)
    backend.auto_ready = False
    r = client.put(f"{API}/ep/config", json={"served_entities": [{"entity_name": "m", "entity_version": "2"}]})
    assert r.status_code == 200 and r.json()["state"]["config_update"] == "IN_PROGRESS"
    again = client.put(f"{API}/ep/config", json={"served_entities": [{"entity_name": "m", "entity_version": "1"}]})
    assert again.status_code == 409 and again.json()["error_code"] == "RESOURCE_CONFLICT"
    # the old config keeps serving while the new one builds
    assert client.post("/serving-endpoints/ep/invocations", json={}).headers["served-model-name"] == "m-1"
    for g in backend.groups.values():
        g.scale()
    backend.notify()
    body = wait_not_updating(client, "ep")
    assert body["config"]["config_version"] == 2
    assert client.post("/serving-endpoints/ep/invocations", json={}).headers["served-model-name"] == "m-2"


def test_failed_update_keeps_old_config(client, backend):
    create(client)
    backend.failing_models["m"] = "model failed to import: No module named 'nope'"
    # a different served entity spec so a new group is needed
    client.put(f"{API}/ep/config", json={"served_entities": [{"entity_name": "m", "entity_version": "2"}]})
    body = wait_not_updating(client, "ep")
    assert body["state"] == {"ready": "READY", "config_update": "UPDATE_FAILED"}
    assert body["config"]["config_version"] == 1
    logs = client.get(f"{API}/ep/served-models/m-2/build-logs")
    assert logs.status_code == 404 or "No module named" in logs.json()["logs"]
    assert client.post("/serving-endpoints/ep/invocations", json={}).status_code == 200


def test_tags_gateway_notifications_telemetry(client):
    create(client, tags=[{"key": "team", "value": "a"}])
    r = client.patch(f"{API}/ep/tags", json={"add_tags": [{"key": "b", "value": "1"}], "delete_tags": ["team"]})
    assert r.json() == {"tags": [{"key": "b", "value": "1"}]}
    gw = {"rate_limits": [{"calls": "10", "renewal_period": "minute", "key": "user"}],
          "usage_tracking_config": {"enabled": True}}
    r = client.put(f"{API}/ep/ai-gateway", json=gw)
    assert r.status_code == 200 and r.json()["rate_limits"][0]["calls"] == 10
    assert client.get(f"{API}/ep").json()["ai_gateway"]["usage_tracking_config"] == {"enabled": True}
    r = client.put(f"{API}/ep/rate-limits", json={"rate_limits": [{"calls": 5, "renewal_period": "minute"}]})
    assert r.json() == {"rate_limits": [{"calls": 5, "renewal_period": "minute"}]}
    r = client.patch(f"{API}/ep/notifications", json={"email_notifications": {"on_update_failure": ["a@b.c"]}})
    assert r.json() == {"name": "ep", "email_notifications": {"on_update_failure": ["a@b.c"]}}
    r = client.patch(f"{API}/ep/telemetry-config",
                     json={"telemetry_config": {"enabled_telemetry_features": ["TELEMETRY_FEATURE_LOGS"]}})
    assert r.json()["telemetry_config"]["enabled_telemetry_features"] == ["TELEMETRY_FEATURE_LOGS"]


def test_bad_gateway_config_is_refused_and_nothing_stored(client):
    create(client)
    for body, field in [
        ({"rate_limits": [{"calls": 1, "renewal_period": "hour"}]}, "renewal_period"),
        ({"rate_limits": [{"calls": -1, "renewal_period": "minute"}]}, "calls"),
        ({"rate_limits": [{"calls": 1, "renewal_period": "minute", "key": "user_group"}]}, "principal"),
        ({"surprise": True}, "surprise"),
        ({"inference_table_config": {"catalog_name": "bad name", "enabled": True}}, "catalog_name"),
    ]:
        r = client.put(f"{API}/ep/ai-gateway", json=body)
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", body
        assert field in r.json()["message"]
    assert "ai_gateway" not in client.get(f"{API}/ep").json()


def test_invalid_creates_name_the_field_and_store_nothing(client):
    ent = {"entity_name": "m", "entity_version": "1"}
    cases = [
        ({"name": "bad name!", "config": {"served_entities": [ent]}}, "name"),
        ({"name": "x", "config": {"served_entities": [{"entity_name": "nope", "entity_version": "1"}]}}, "entity_name"),
        ({"name": "x", "config": {"served_entities": [{"entity_name": "m", "entity_version": "9"}]}}, "entity_name"),
        ({"name": "x", "config": {"served_entities": [{**ent, "workload_size": "Huge"}]}}, "workload_size"),
        ({"name": "x", "config": {"served_entities": [{**ent, "external_model": {
            "provider": "openai", "name": "gpt", "task": "llm/v1/chat"}}]}}, "external_model"),
        ({"name": "x", "config": {"served_entities": "nope"}}, "served_entities"),
        ({"name": 5, "config": {"served_entities": [ent]}}, "name"),
    ]
    for body, field in cases:
        r = client.post(API, json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE" and field in r.json()["message"], r.json()
    r = client.post(API, content=b'{"name": "x", ', headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "Malformed JSON" in r.json()["message"]
    assert client.get(API).json()["endpoints"] == []


def test_duplicate_create(client):
    create(client)
    r = client.post(API, json={"name": "ep", "config": {"served_entities": [{"entity_name": "m", "entity_version": "1"}]}})
    assert r.status_code == 409 and r.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"


def test_auth_and_permissions(client):
    create(client)
    assert client.get(API, headers={"Authorization": ""}).status_code == 401
    r = client.get(API, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHENTICATED"
    assert client.get("/.well-known/databricks-config", headers={"Authorization": ""}).status_code == 200
    tok = client.post("/api/2.0/token-management/on-behalf-of/tokens", json={"user_name": "bob"}).json()["token_value"]
    bob = {"Authorization": f"Bearer {tok}"}
    assert client.get(API, headers=bob).json()["endpoints"] == []
    assert client.post("/serving-endpoints/ep/invocations", json={}, headers=bob).status_code == 403
    eid = client.get(f"{API}/ep").json()["id"]
    r = client.patch(f"/api/2.0/permissions/serving-endpoints/{eid}",
                     json={"access_control_list": [{"user_name": "bob", "permission_level": "CAN_QUERY"}]})
    assert r.status_code == 200 and r.json()["object_id"] == f"/serving-endpoints/{eid}"
    assert client.post("/serving-endpoints/ep/invocations", json={}, headers=bob).status_code == 200
    r = client.put(f"{API}/ep/config", json={"served_entities": [{"entity_name": "m", "entity_version": "2"}]}, headers=bob)
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
    assert client.get(f"{API}/ep", headers=bob).json()["permission_level"] == "CAN_QUERY"
    levels = client.get(f"/api/2.0/permissions/serving-endpoints/{eid}/permissionLevels").json()
    assert [lv["permission_level"] for lv in levels["permission_levels"]] == ["CAN_VIEW", "CAN_QUERY", "CAN_MANAGE"]
    r = client.put(f"/api/2.0/permissions/serving-endpoints/{eid}", json={"access_control_list": []})
    assert client.get(f"{API}/ep", headers=bob).status_code == 404
    tid = [t for t in client.get("/api/2.0/token-management/tokens").json()["token_infos"] if t["owner_name"] == "bob"][0]
    client.delete(f"/api/2.0/token-management/tokens/{tid['token_id']}")
    assert client.get(API, headers=bob).status_code == 401


def test_metrics_and_openapi(client):
    create(client)
    client.post("/serving-endpoints/ep/invocations", json={})
    text = client.get(f"{API}/ep/metrics").text
    assert 'request_count_total{served_entity="m-1"} 1.0' in text
    assert "request_latency_ms_bucket" in text
    doc = client.get(f"{API}/ep/openapi").json()
    assert doc["openapi"].startswith("3.1") and "/serving-endpoints/ep/invocations" in doc["paths"]


def test_payload_too_large(client):
    create(client)
    r = client.post("/serving-endpoints/ep/invocations", content=b"x" * (16 * 1024 * 1024 + 1),
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "16 MB" in r.json()["message"]


def test_admin_token_is_not_stored_in_plaintext(client, tmp_path):
    assert ADMIN.encode() not in (tmp_path / "ladle.db").read_bytes()
