"""Authentication and per-endpoint permissions, as a user sees them: tokens made with the
CLI, grants made with the SDK, answers over plain HTTP."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest
from databricks.sdk.service.serving import (
    ServingEndpointAccessControlRequest, ServingEndpointPermissionLevel,
)

from e2e_support import SERVER_ARGV, client


def ladle(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*SERVER_ARGV, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def bob(server, databricks_env_module):
    p = ladle(databricks_env_module, "tokens", "create", "--user", "bob", "--comment", "e2e")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["token_info"]["owner_name"] == "bob"
    return out["token_value"], out["token_info"]["token_id"]


@pytest.fixture(scope="module")
def databricks_env_module(server, tmp_path_factory):
    import os

    home = tmp_path_factory.mktemp("cli-home")
    return {**os.environ, "DATABRICKS_HOST": server.url, "DATABRICKS_TOKEN": server.admin_token,
            "DATABRICKS_CONFIG_FILE": str(home / "none"), "HOME": str(home)}


def test_requests_without_a_valid_token_get_401(server, iris_endpoint):
    with httpx.Client(base_url=server.url, timeout=30) as anon:
        for method, path in [("GET", "/api/2.0/serving-endpoints"),
                             ("GET", "/api/2.0/serving-endpoints/iris"),
                             ("POST", "/serving-endpoints/iris/invocations"),
                             ("GET", "/api/2.0/mlflow/registered-models/search")]:
            r = anon.request(method, path, json={"inputs": [[1, 2, 3, 4]]} if method == "POST" else None)
            assert r.status_code == 401, (path, r.text)
            body = r.json()
            assert body["error_code"] == "UNAUTHENTICATED" and body["message"]
        r = anon.get("/api/2.0/serving-endpoints", headers={"Authorization": "Bearer not-a-token"})
        assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHENTICATED"
        r = anon.get("/.well-known/databricks-config")
        assert r.status_code == 200
        meta = r.json()
        assert meta["host_type"] == "WORKSPACE_HOST" and meta["workspace_id"].isdigit()


def test_sdk_with_a_wrong_token_raises_unauthenticated(server):
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config
    from databricks.sdk.errors import Unauthenticated

    w = WorkspaceClient(config=Config(host=server.url, token="wrong", retry_timeout_seconds=10))
    with pytest.raises(Unauthenticated):
        list(w.serving_endpoints.list())


def test_user_needs_a_grant_to_see_and_query(server, iris_endpoint, bob, workspace, sample, v1_model):
    token, _ = bob
    records = {"dataframe_records": sample.to_dict(orient="records")}
    with client(server, token) as b:
        r = b.get("/api/2.0/serving-endpoints/iris")
        assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        assert "iris" not in [e["name"] for e in b.get("/api/2.0/serving-endpoints").json()["endpoints"]]
        r = b.post("/serving-endpoints/iris/invocations", json=records)
        assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED", r.text
        assert "CAN_QUERY" in r.json()["message"]

        perms = workspace.serving_endpoints.set_permissions(iris_endpoint["id"], access_control_list=[
            ServingEndpointAccessControlRequest(user_name="bob",
                                                permission_level=ServingEndpointPermissionLevel.CAN_QUERY)])
        assert any(a.user_name == "bob" for a in perms.access_control_list)

        got = b.get("/api/2.0/serving-endpoints/iris")
        assert got.status_code == 200 and got.json()["permission_level"] == "CAN_QUERY"
        assert "iris" in [e["name"] for e in b.get("/api/2.0/serving-endpoints").json()["endpoints"]]
        r = b.post("/serving-endpoints/iris/invocations", json=records)
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == v1_model.predict(sample).tolist()

        r = b.put("/api/2.0/serving-endpoints/iris/config",
                  json={"served_entities": [{"entity_name": "main.default.iris", "entity_version": "2"}]})
        assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED", r.text
        r = b.delete("/api/2.0/serving-endpoints/iris")
        assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
        r = b.put(f"/api/2.0/permissions/serving-endpoints/{iris_endpoint['id']}",
                  json={"access_control_list": [{"user_name": "bob", "permission_level": "CAN_MANAGE"}]})
        assert r.status_code == 403
    ep = workspace.serving_endpoints.get("iris")
    assert ep.config.config_version == iris_endpoint["config"]["config_version"]


def test_service_principal_token(databricks_env_module, server):
    p = ladle(databricks_env_module, "tokens", "create", "--service-principal", "etl-bot")
    assert p.returncode == 0, p.stderr
    token = json.loads(p.stdout)["token_value"]
    with client(server, token) as sp:
        r = sp.get("/api/2.0/serving-endpoints")
        assert r.status_code == 200


def test_tokens_are_hashed_at_rest(server, bob):
    token, _ = bob
    for f in server.home.glob("ladle.db*"):
        data = f.read_bytes()
        assert token.encode() not in data, f
        assert server.admin_token.encode() not in data, f


def test_revoked_token_gets_401(server, databricks_env_module):
    # a token of its own: the module's `bob` stays valid for the tests that run after this one
    made = ladle(databricks_env_module, "tokens", "create", "--user", "bob", "--comment", "to revoke")
    assert made.returncode == 0, made.stderr
    token, token_id = json.loads(made.stdout)["token_value"], json.loads(made.stdout)["token_info"]["token_id"]
    listed = ladle(databricks_env_module, "tokens", "list")
    assert listed.returncode == 0, listed.stderr
    infos = json.loads(listed.stdout)
    assert token_id in [t["token_id"] for t in infos]
    assert token not in listed.stdout
    p = ladle(databricks_env_module, "tokens", "revoke", token_id)
    assert p.returncode == 0, p.stderr
    with client(server, token) as b:
        r = b.get("/api/2.0/serving-endpoints")
        assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHENTICATED"
        r = b.post("/serving-endpoints/iris/invocations", json={"inputs": [[1, 2, 3, 4]]})
        assert r.status_code == 401
