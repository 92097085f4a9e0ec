"""The API as the Model Serving skill uses it, in process: the create body's top-level form,
the permissions API given a name, and Unity Catalog's `system.ai` models."""

from __future__ import annotations

from tests.integration.conftest import wait_not_updating

API = "/api/2.0/serving-endpoints"
UC = "/api/2.1/unity-catalog/models"
ENTITIES = [{"entity_name": "main.default.churn", "entity_version": "3", "workload_size": "Small"}]
TRAFFIC = {"routes": [{"served_entity_name": "churn-3", "traffic_percentage": 100}]}


def _config(client, name):
    cfg = wait_not_updating(client, name)["config"]
    return [(e["name"], e["entity_name"], e["entity_version"]) for e in cfg["served_entities"]], cfg["traffic_config"]


def test_top_level_body_is_the_config_form(client):
    r = client.post(API, json={"name": "top", "served_entities": ENTITIES, "traffic_config": TRAFFIC,
                               "tags": [{"key": "team", "value": "ml"}]})
    assert r.status_code == 200, r.text
    r = client.post(API, json={"name": "wrapped", "config": {"served_entities": ENTITIES, "traffic_config": TRAFFIC},
                               "tags": [{"key": "team", "value": "ml"}]})
    assert r.status_code == 200, r.text
    entities, traffic = _config(client, "top")
    assert (entities, traffic) == _config(client, "wrapped")
    assert entities == [("churn-3", "main.default.churn", "3")]
    assert [(r["served_entity_name"], r["traffic_percentage"]) for r in traffic["routes"]] == [("churn-3", 100)]
    assert client.get(f"{API}/top").json()["tags"] == [{"key": "team", "value": "ml"}]


def test_a_field_in_both_forms_is_a_400_and_creates_nothing(client):
    r = client.post(API, json={"name": "mixed", "served_entities": ENTITIES,
                               "config": {"served_entities": ENTITIES}})
    assert r.status_code == 400
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert r.json()["message"].startswith("served_entities: given both at the top level and as config.served_entities")
    assert client.get(f"{API}/mixed").status_code == 404


def test_get_permissions_given_a_name_says_the_id(client):
    r = client.post(API, json={"name": "named", "served_entities": ENTITIES})
    ep_id = r.json()["id"]
    r = client.get("/api/2.0/permissions/serving-endpoints/named")
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert f"'named' is the name of an endpoint; the permissions API takes its ID: '{ep_id}'" in r.json()["message"]
    assert client.get(f"/api/2.0/permissions/serving-endpoints/{ep_id}").status_code == 200
    # someone who cannot see the endpoint learns nothing about it
    token = client.post("/api/2.0/token-management/on-behalf-of/tokens", json={"user_name": "eve"}).json()
    r = client.get("/api/2.0/permissions/serving-endpoints/named",
                   headers={"Authorization": f"Bearer {token['token_value']}"})
    assert r.status_code == 404 and ep_id not in r.json()["message"]
    assert "takes the endpoint's ID" in r.json()["message"]


def test_system_ai_lists_the_foundation_models_with_weights(client):
    r = client.get(UC, params={"catalog_name": "system", "schema_name": "ai"})
    assert r.status_code == 200, r.text
    models = {m["full_name"]: m for m in r.json()["registered_models"]}
    minilm = models["system.ai.all_minilm_l6_v2"]
    assert (minilm["catalog_name"], minilm["schema_name"], minilm["name"]) == ("system", "ai", "all_minilm_l6_v2")
    assert "sentence-transformers/all-MiniLM-L6-v2" in minilm["comment"]
    assert "system.ai.qwen2_5_0_5b_instruct" not in models   # its weights are not on this machine
    got = client.get(f"{UC}/system.ai.all_minilm_l6_v2").json()
    assert got["full_name"] == "system.ai.all_minilm_l6_v2" and "aliases" not in got
    versions = client.get(f"{UC}/system.ai.all_minilm_l6_v2/versions").json()["model_versions"]
    assert [(v["version"], v["status"]) for v in versions] == [(1, "READY")]
    assert client.get(f"{UC}/system.ai.all_minilm_l6_v2/versions/1").json()["model_name"] == "all_minilm_l6_v2"
    assert client.get(f"{UC}/system.ai.all_minilm_l6_v2/versions/2").status_code == 404
    r = client.get(f"{UC}/system.ai.nope")
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert "catalog_name=&schema_name=" in r.json()["message"]


def test_unity_catalog_bad_queries_are_400s(client):
    for params, needle in (({"catalog_name": "system"}, "schema_name: is required"),
                           ({"schema_name": "ai"}, "catalog_name: is required"),
                           ({"catalog_name": "sys'tem", "schema_name": "ai"}, "catalog_name"),
                           ({"catalog_name": "system", "schema_name": "ai", "max_results": "-1"}, "max_results"),
                           ({"catalog_name": "system", "schema_name": "ai", "page_token": "zz"}, "page_token")):
        r = client.get(UC, params=params)
        assert r.status_code == 400, (params, r.text)
        assert needle in r.json()["message"], r.json()
    r = client.get(f"{UC}/system.ai.all_minilm_l6_v2/versions/x")
    assert r.status_code == 400 and r.json()["message"].startswith("version:")
    r = client.get(UC, params={"catalog_name": "system", "schema_name": "ai"},
                   headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401 and "registered_models" not in r.text


def _token(client, **who):
    r = client.post("/api/2.0/token-management/on-behalf-of/tokens", json=who)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token_value']}"}


def test_query_of_an_endpoint_not_ready_says_poll_get_and_read_build_logs(client, backend):
    backend.failing_models["main.default.churn"] = "the model failed to load"
    client.post(API, json={"name": "stuck", "served_entities": ENTITIES})
    assert wait_not_updating(client, "stuck")["state"] == {"ready": "NOT_READY", "config_update": "UPDATE_FAILED"}
    r = client.post("/serving-endpoints/stuck/invocations", json={"inputs": [1]})
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    message = r.json()["message"]
    assert "may still be provisioning" in message and "`serving-endpoints get stuck`" in message
    assert "`serving-endpoints build-logs stuck churn-3`" in message
    # someone without access to it is told only that it does not exist
    r = client.post("/serving-endpoints/stuck/invocations", json={"inputs": [1]}, headers=_token(client, user_name="eve"))
    assert r.status_code == 404 and "churn-3" not in r.json()["message"]
    assert "Verify the name with `serving-endpoints list`" in r.json()["message"]


def test_permission_denied_names_the_level_and_for_an_app_the_resource(client):
    ep_id = client.post(API, json={"name": "guarded", "served_entities": ENTITIES}).json()["id"]
    wait_not_updating(client, "guarded")
    sp, user = _token(client, application_id="app-sp"), _token(client, user_name="viewer")
    r = client.patch(f"/api/2.0/permissions/serving-endpoints/{ep_id}", json={"access_control_list": [
        {"service_principal_name": "app-sp", "permission_level": "CAN_VIEW"},
        {"user_name": "viewer", "permission_level": "CAN_VIEW"}]})
    assert r.status_code == 200, r.text
    r = client.post("/serving-endpoints/guarded/invocations", json={"inputs": [1]}, headers=sp)
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
    assert "does not have CAN_QUERY permission on endpoint 'guarded'" in r.json()["message"]
    assert "`serving_endpoint` resource of the app with permission CAN_QUERY" in r.json()["message"]
    r = client.post("/serving-endpoints/guarded/invocations", json={"inputs": [1]}, headers=user)
    assert r.status_code == 403 and "update-permissions" in r.json()["message"]
    assert "serving_endpoint" not in r.json()["message"]


def test_provisioned_throughput_create_takes_the_top_level_form_too(client):
    entities = [{"entity_name": "system.ai.all_minilm_l6_v2", "entity_version": "1", "provisioned_model_units": 1}]
    r = client.post(f"{API}/pt", json={"name": "pt-top", "served_entities": entities})
    assert r.status_code == 200, r.text
    served = wait_not_updating(client, "pt-top")["config"]["served_entities"]
    assert [(e["entity_name"], e["provisioned_model_units"]) for e in served] == [("system.ai.all_minilm_l6_v2", 1)]
    r = client.post(f"{API}/pt", json={"name": "pt-mixed", "traffic_config": {"routes": []},
                                       "config": {"served_entities": entities, "traffic_config": {"routes": []}}})
    assert r.status_code == 400 and r.json()["message"].startswith("traffic_config: given both")
