"""The secrets API in process: every bad body or query is a 400 naming the field and changes
nothing; ACL routes answer in the databricks-sdk's shapes; an endpoint update is refused
for a scope its caller cannot read."""

from __future__ import annotations

import pytest

from tests.integration.conftest import create, wait_not_updating

S = "/api/2.0/secrets"


def _user(client, name: str) -> dict[str, str]:
    r = client.post("/api/2.0/token-management/on-behalf-of/tokens", json={"user_name": name})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token_value']}"}


BAD = [
    ("POST", "/scopes/create", {"scope": "bad scope!"}, "scope"),
    ("POST", "/scopes/create", {"scope": 7}, "scope"),
    ("POST", "/scopes/create", {}, "scope"),
    ("POST", "/scopes/create", {"scope": "x", "initial_manage_principal": "bob"}, "initial_manage_principal"),
    ("POST", "/scopes/create", {"scope": "x", "scope_backend_type": "AZURE_KEYVAULT"}, "scope_backend_type"),
    ("POST", "/scopes/delete", {"scope": ["s"]}, "scope"),
    ("POST", "/put", {"scope": "s", "key": "k"}, "string_value or bytes_value"),
    ("POST", "/put", {"scope": "s", "key": "k", "string_value": "a", "bytes_value": "YQ=="},
     "string_value or bytes_value"),
    ("POST", "/put", {"scope": "s", "key": "k k", "string_value": "v"}, "key"),
    ("POST", "/put", {"scope": "s", "key": "k", "bytes_value": "not base64!"}, "bytes_value"),
    ("POST", "/put", {"scope": "s", "key": "k", "string_value": 5}, "string_value"),
    ("POST", "/put", {"scope": "s", "key": "k", "string_value": "x" * (128 * 1024 + 1)}, "string_value"),
    ("POST", "/delete", {"scope": "s"}, "key"),
    ("POST", "/acls/put", {"scope": "s", "principal": "bob", "permission": "OWNER"}, "permission"),
    ("POST", "/acls/put", {"scope": "s", "principal": "", "permission": "READ"}, "principal"),
    ("POST", "/acls/put", {"scope": "s", "principal": {"user": "bob"}, "permission": "READ"}, "principal"),
    ("POST", "/acls/delete", {"scope": "s"}, "principal"),
    ("GET", "/list", None, "scope"),
    ("GET", "/acls/list", None, "scope"),
    ("GET", "/acls/get?scope=s", None, "principal"),
    ("GET", "/get?scope=s", None, "key"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), BAD, ids=[f"{m} {p} {f}" for m, p, _, f in BAD])
def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(client, method, path, body, field):
    client.post(S + "/scopes/create", json={"scope": "s"})
    client.post(S + "/put", json={"scope": "s", "key": "k", "string_value": "v"})
    before = (client.get(S + "/scopes/list").json(), client.get(S + "/list?scope=s").json(),
              client.get(S + "/acls/list?scope=s").json())
    r = client.request(method, S + path, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE" and field in r.json()["message"]
    after = (client.get(S + "/scopes/list").json(), client.get(S + "/list?scope=s").json(),
             client.get(S + "/acls/list?scope=s").json())
    assert after == before


def test_not_json_is_a_400(client):
    r = client.post(S + "/acls/put", content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_acl_routes_and_who_sees_what(client):
    alice, bob = _user(client, "alice"), _user(client, "bob")
    assert client.post(S + "/scopes/create", json={"scope": "a"}, headers=alice).status_code == 200
    assert client.get(S + "/acls/list?scope=a", headers=alice).json() == {
        "items": [{"principal": "alice", "permission": "MANAGE"}]}
    assert client.get(S + "/scopes/list", headers=bob).json() == {"scopes": []}
    assert client.get(S + "/scopes/list").json()["scopes"] == [{"name": "a", "backend_type": "DATABRICKS"}]
    denied = client.get(S + "/list?scope=a", headers=bob)
    assert denied.status_code == 403 and denied.json()["error_code"] == "PERMISSION_DENIED"
    r = client.post(S + "/acls/put", json={"scope": "a", "principal": "bob", "permission": "READ"}, headers=alice)
    assert r.status_code == 200 and r.json() == {}
    assert client.get(S + "/acls/get?scope=a&principal=bob", headers=alice).json() == {
        "principal": "bob", "permission": "READ"}
    assert client.get(S + "/list?scope=a", headers=bob).json() == {"secrets": []}
    assert client.get(S + "/scopes/list", headers=bob).json()["scopes"][0]["name"] == "a"
    # the secret value stays unreadable over HTTP, even with READ
    assert client.get(S + "/get?scope=a&key=k", headers=bob).status_code == 403
    gone = client.get(S + "/acls/get?scope=nope&principal=bob", headers=alice)
    assert gone.status_code == 404 and gone.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def _external(key: str) -> dict:
    return {"external_model": {"name": "gpt", "provider": "openai", "task": "llm/v1/chat", "openai_config": {
        "openai_api_key" if key.startswith("{{") else "openai_api_key_plaintext": key,
        "openai_api_base": "http://127.0.0.1:9"}}}


def test_endpoint_update_needs_read_on_referenced_scopes(client):
    """External models: no registered model is involved, so only the secret check decides."""
    alice = _user(client, "alice")
    client.post(S + "/scopes/create", json={"scope": "adm"})
    client.post(S + "/put", json={"scope": "adm", "key": "k", "string_value": "v"})
    create(client, "ep-ext", entities=[_external("sk-plain")])
    eid = client.get("/api/2.0/serving-endpoints/ep-ext").json()["id"]
    r = client.patch(f"/api/2.0/permissions/serving-endpoints/{eid}",
                     json={"access_control_list": [{"user_name": "alice", "permission_level": "CAN_MANAGE"}]})
    assert r.status_code == 200, r.text
    cfg = {"served_entities": [_external("{{secrets/adm/k}}")]}
    r = client.put("/api/2.0/serving-endpoints/ep-ext/config", json=cfg, headers=alice)
    assert r.status_code == 403, r.text
    assert r.json()["error_code"] == "PERMISSION_DENIED" and "'adm'" in r.json()["message"]
    assert "openai_config.openai_api_key" in r.json()["message"]
    ep = client.get("/api/2.0/serving-endpoints/ep-ext").json()
    assert ep["config"]["config_version"] == 1                                   # unchanged
    client.post(S + "/acls/put", json={"scope": "adm", "principal": "alice", "permission": "READ"})
    r = client.put("/api/2.0/serving-endpoints/ep-ext/config", json=cfg, headers=alice)
    assert r.status_code == 200, r.text
    assert wait_not_updating(client, "ep-ext")["config"]["config_version"] == 2
