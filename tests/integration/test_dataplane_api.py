"""Route-optimized endpoints in process: what GET answers, that the flag is fixed, and the
jwt-bearer exchange behind `serving_endpoints_data_plane.query` with its scoped token."""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import create

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _details(client, name):
    return client.get(f"/api/2.0/serving-endpoints/{name}").json()["data_plane_info"]["query_info"][
        "authorization_details"]


def _exchange(client, assertion, details):
    return client.post("/oidc/v1/token", data={"grant_type": JWT_BEARER, "assertion": assertion,
                                               "authorization_details": details},
                       headers={"Authorization": ""})


def _user_token(client, name):
    r = client.post("/api/2.0/token-management/on-behalf-of/tokens", json={"user_name": name})
    assert r.status_code == 200, r.text
    return r.json()["token_value"]


def _grant(client, endpoint_id, user, level="CAN_QUERY"):
    r = client.patch(f"/api/2.0/permissions/serving-endpoints/{endpoint_id}",
                     json={"access_control_list": [{"user_name": user, "permission_level": level}]})
    assert r.status_code == 200, r.text


def test_a_route_optimized_endpoint_answers_its_data_plane(client):
    ep = create(client, "fast", route_optimized=True)
    url = "http://testserver/serving-endpoints/fast/invocations"
    assert ep["route_optimized"] is True and ep["endpoint_url"] == url
    info = ep["data_plane_info"]["query_info"]
    assert info["endpoint_url"] == url
    assert json.loads(info["authorization_details"])[0]["object_path"] == f"/serving-endpoints/{ep['id']}"
    listed = {e["name"]: e for e in client.get("/api/2.0/serving-endpoints").json()["endpoints"]}
    assert listed["fast"]["route_optimized"] is True
    plain = create(client, "plain")
    assert plain["route_optimized"] is False
    assert "endpoint_url" not in plain and "data_plane_info" not in plain
    assert "route_optimized" not in listed.get("plain", {})


def test_route_optimized_cannot_be_changed_by_a_config_update(client):
    create(client, "fast", route_optimized=True)
    cfg = {"served_entities": [{"entity_name": "m", "entity_version": "2"}]}
    for body in ({**cfg, "route_optimized": False}, {**cfg, "route_optimized": True}):
        r = client.put("/api/2.0/serving-endpoints/fast/config", json=body)
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "route_optimized" in r.json()["message"]
    ep = client.get("/api/2.0/serving-endpoints/fast").json()
    assert ep["route_optimized"] is True and ep["config"]["served_entities"][0]["entity_version"] == "1"


def test_the_exchange_issues_a_token_scoped_to_the_endpoint(client):
    ep = create(client, "fast", route_optimized=True)
    create(client, "other", route_optimized=True)
    bob = _user_token(client, "bob")
    _grant(client, ep["id"], "bob")
    r = _exchange(client, bob, _details(client, "fast"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and 0 < body["expires_in"] <= 3600
    scoped = {"Authorization": f"Bearer {body['access_token']}"}
    q = client.post("/serving-endpoints/fast/invocations", json={"inputs": [[1.0]]}, headers=scoped)
    assert q.status_code == 200, q.text
    for method, path in (("POST", "/serving-endpoints/other/invocations"),
                         ("GET", "/api/2.0/serving-endpoints/fast"),
                         ("GET", "/api/2.0/serving-endpoints"),
                         ("POST", "/api/2.0/token/create")):
        r = client.request(method, path, json={"inputs": [[1.0]]}, headers=scoped)
        assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED", (path, r.text)
    # a scoped token cannot be exchanged again (for another endpoint or the same one)
    again = _exchange(client, body["access_token"], _details(client, "fast"))
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("case", ["no_permission", "view_only", "unknown_endpoint", "bad_json",
                                  "bad_assertion", "no_assertion", "no_details", "wrong_action"])
def test_the_exchange_refuses_and_issues_nothing(client, case):
    ep = create(client, "fast", route_optimized=True)
    bob = _user_token(client, "bob")
    details = _details(client, "fast")
    if case == "view_only":
        _grant(client, ep["id"], "bob", "CAN_VIEW")
    elif case != "no_permission":
        _grant(client, ep["id"], "bob")
    form = {"assertion": bob, "authorization_details": details}
    want = "invalid_authorization_details"
    if case == "unknown_endpoint":
        form["authorization_details"] = details.replace(ep["id"], "0" * 32)
    elif case == "bad_json":
        form["authorization_details"] = details[:-3]
    elif case == "wrong_action":
        form["authorization_details"] = details.replace("query_inference_endpoint", "manage")
    elif case == "bad_assertion":
        form["assertion"], want = "dapi" + "0" * 64, "invalid_grant"
    elif case == "no_assertion":
        del form["assertion"]
        want = "invalid_request"
    elif case == "no_details":
        del form["authorization_details"]
        want = "invalid_request"
    r = client.post("/oidc/v1/token", data={"grant_type": JWT_BEARER, **form}, headers={"Authorization": ""})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == want and r.json()["error_description"]
    assert "access_token" not in r.json()
    assert bob not in r.text


def test_revoking_the_personal_token_revokes_its_data_plane_token(client):
    ep = create(client, "fast", route_optimized=True)
    made = client.post("/api/2.0/token-management/on-behalf-of/tokens", json={"user_name": "bob"}).json()
    _grant(client, ep["id"], "bob")
    scoped = {"Authorization": "Bearer " + _exchange(client, made["token_value"], _details(client, "fast")).json()[
        "access_token"]}
    assert client.post("/serving-endpoints/fast/invocations", json={"inputs": [[1.0]]}, headers=scoped).status_code == 200
    assert client.delete(f"/api/2.0/token-management/tokens/{made['token_info']['token_id']}").status_code == 200
    r = client.post("/serving-endpoints/fast/invocations", json={"inputs": [[1.0]]}, headers=scoped)
    assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHENTICATED"
