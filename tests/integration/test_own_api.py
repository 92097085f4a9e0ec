"""ladle's own API in process: the document lists exactly the routes the app serves, and the
bodies of tokens, groups and permissions are validated by their schemas - a mistake is a 400
in the API's error shape naming the field, and changes nothing."""

from __future__ import annotations

import time
from typing import Any

import pytest

from starlette.testclient import TestClient

from ladle.api.api_table import OPERATIONS
from ladle.app import build_app
from ladle.config import Settings
from ladle.runtimes.fake import FakeBackend

from tests.integration.conftest import ADMIN, FakeRegistry, create


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory):
    """One app for the bad-body cases (none of them may change anything): an endpoint `ep`
    and a group `g`."""
    settings = Settings(home=tmp_path_factory.mktemp("own-api"), admin_token=ADMIN, reconcile_interval_s=0.05)
    app = build_app(settings, backend=FakeBackend(), registry=FakeRegistry({"m": {"1"}}))
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        create(c, "ep")
        assert c.post("/api/2.0/ladle/groups", json={"display_name": "g"}).status_code == 200
        yield c

# Served but not part of the document: MLflow's own API (proxied) and a trailing-slash alias.
MLFLOW = ("/api/2.0/mlflow", "/api/3.0/mlflow")
ALIASES = {"/api/2.0/serving-endpoints/"}


def _served(client) -> set[tuple[str, str]]:
    routes = client.app.app.routes   # AuthMiddleware -> Starlette
    return {(m, r.path) for r in routes if getattr(r, "path", "").startswith("/api/")
            and not r.path.startswith(MLFLOW) and r.path not in ALIASES
            for m in (r.methods or ()) if m != "HEAD"}


def test_the_document_lists_exactly_the_routes_served(client) -> None:
    assert _served(client) == {(op.method, op.path) for op in OPERATIONS}


def test_the_document_is_served_behind_auth(client) -> None:
    r = client.get("/api/2.0/ladle/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"] == "3.1.0"
    assert doc["paths"]["/api/2.0/token/create"]["post"]["operationId"] == "createToken"
    anonymous = client.get("/api/2.0/ladle/openapi.json", headers={"Authorization": ""})
    assert anonymous.status_code == 401 and anonymous.json()["error_code"] == "UNAUTHENTICATED"


def _state(client) -> dict[str, Any]:
    ep = client.get("/api/2.0/serving-endpoints/ep").json()
    return {"endpoint": ep,
            "tokens": sorted(t["token_id"] for t in client.get("/api/2.0/token-management/tokens").json()["token_infos"]),
            "groups": client.get("/api/2.0/ladle/groups").json(),
            "acl": client.get(f"/api/2.0/permissions/serving-endpoints/{ep['id']}").json()}


BAD = {
    "lifetime not a number": ("POST", "/api/2.0/token/create", {"lifetime_seconds": "soon"}, "lifetime_seconds"),
    "lifetime a boolean": ("POST", "/api/2.0/token/create", {"lifetime_seconds": True}, "lifetime_seconds"),
    "lifetime a fraction": ("POST", "/api/2.0/token/create", {"lifetime_seconds": 1.5}, "lifetime_seconds"),
    "lifetime negative": ("POST", "/api/2.0/token/create", {"lifetime_seconds": -1}, "lifetime_seconds"),
    "lifetime past int64 ms": ("POST", "/api/2.0/token/create", {"lifetime_seconds": 10**17}, "lifetime_seconds"),
    "comment a number": ("POST", "/api/2.0/token/create", {"comment": 5}, "comment"),
    "comment with NUL": ("POST", "/api/2.0/token/create", {"comment": "a\x00b"}, "comment"),
    "obo both principals": ("POST", "/api/2.0/token-management/on-behalf-of/tokens",
                            {"user_name": "a", "application_id": "b"}, "user_name or application_id"),
    "obo no principal": ("POST", "/api/2.0/token-management/on-behalf-of/tokens", {}, "user_name or application_id"),
    "obo user a list": ("POST", "/api/2.0/token-management/on-behalf-of/tokens", {"user_name": ["a"]}, "user_name"),
    "group name a number": ("POST", "/api/2.0/ladle/groups", {"display_name": 7}, "display_name"),
    "group name bad chars": ("POST", "/api/2.0/ladle/groups", {"display_name": "a/b"}, "display_name"),
    "group built in": ("POST", "/api/2.0/ladle/groups", {"display_name": "admins"}, "display_name"),
    "member both kinds": ("POST", "/api/2.0/ladle/groups/g/members",
                          {"user_name": "a", "service_principal_name": "b"}, "user_name or service_principal_name"),
    "member empty": ("POST", "/api/2.0/ladle/groups/g/members", {"user_name": ""}, "user_name"),
    "acl not a list": ("PUT", "PERMS", {"access_control_list": {"user_name": "a"}}, "access_control_list"),
    "acl bad level": ("PATCH", "PERMS", {"access_control_list": [{"user_name": "a", "permission_level": "OWN"}]},
                      "access_control_list.0.permission_level"),
    "acl no principal": ("PUT", "PERMS", {"access_control_list": [{"permission_level": "CAN_VIEW"}]},
                         "access_control_list.0"),
    "acl name a number": ("PATCH", "PERMS", {"access_control_list": [{"group_name": 3, "permission_level": "CAN_VIEW"}]},
                          "access_control_list.0.group_name"),
    # found by the schema fuzz: lax types accepted against the document, and 500s
    "rate limit calls a boolean": ("PUT", "/api/2.0/serving-endpoints/ep/rate-limits",
                                   {"rate_limits": [{"calls": False, "renewal_period": "minute"}]},
                                   "rate_limits.0.calls"),
    "fallback enabled 0": ("PUT", "/api/2.0/serving-endpoints/ep/ai-gateway", {"fallback_config": {"enabled": 0}},
                           "fallback_config.enabled"),
    "served_models bad workload": ("PUT", "/api/2.0/serving-endpoints/ep/config",
                                   {"served_models": [{"model_name": "m", "model_version": "1", "workload_type": ""}]},
                                   "served_models.0"),
    "pt entity_name empty": ("PUT", "/api/2.0/serving-endpoints/pt/ep/config",
                             {"config": {"served_entities": [{"entity_name": "", "provisioned_model_units": 1}]}},
                             "config.served_entities.0.entity_name"),
    "usage group_by": ("GET", "/api/2.0/ladle/usage?group_by=week", None, "group_by"),
    "add-local task": ("POST", "/api/2.0/ladle/foundation-models/add-local",
                       {"path": "/x", "name": "n", "task": "llm/v1/poem"}, "task"),
    "add-local name too long": ("POST", "/api/2.0/ladle/foundation-models/add-local",
                                {"path": "/" + "a" * 300, "name": "n", "task": "llm/v1/chat"}, "path"),
    "add-local unknown home": ("POST", "/api/2.0/ladle/foundation-models/add-local",
                               {"path": "~no-such-user-here/m", "name": "n", "task": "llm/v1/chat"}, "path"),
}


@pytest.mark.parametrize("case", BAD.values(), ids=list(BAD))
def test_a_bad_body_is_a_400_naming_the_field_and_changes_nothing(seeded, case) -> None:
    client = seeded
    method, path, body, field = case
    if path == "PERMS":
        path = f"/api/2.0/permissions/serving-endpoints/{client.get('/api/2.0/serving-endpoints/ep').json()['id']}"
    before = _state(client)
    r = client.request(method, path, json=body)
    assert r.status_code == 400, r.text
    err = r.json()
    assert err["error_code"] == "INVALID_PARAMETER_VALUE" and field in err["message"], err
    assert _state(client) == before


def test_integers_also_as_decimal_strings(client) -> None:
    """The issue's `{"lifetime_seconds": "1"}` (a 500 before): an integer as a decimal string
    is read as protobuf's JSON mapping reads it."""
    before = time.time() * 1000
    r = client.post("/api/2.0/token/create", json={"lifetime_seconds": "60", "comment": "c"})
    assert r.status_code == 200, r.text
    info = r.json()["token_info"]
    assert 59_000 <= info["expiry_time"] - before <= 61_000 + (time.time() * 1000 - before)


def test_good_bodies_still_work(client) -> None:
    ep = create(client, "ep")
    perms = f"/api/2.0/permissions/serving-endpoints/{ep['id']}"
    r = client.patch(perms, json={"access_control_list": [{"user_name": "ann", "permission_level": "CAN_QUERY"},
                                                          {"group_name": "g", "permission_level": "CAN_VIEW"}]})
    assert r.status_code == 200, r.text
    granted = {(e.get("user_name") or e.get("group_name"), e["all_permissions"][0]["permission_level"])
               for e in r.json()["access_control_list"]}
    assert {("ann", "CAN_QUERY"), ("g", "CAN_VIEW")} <= granted
    assert client.put(perms, json={}).status_code == 200          # no body: every direct grant removed
    assert [e["group_name"] for e in client.get(perms).json()["access_control_list"]] == ["admins"]
    r = client.post("/api/2.0/token-management/on-behalf-of/tokens", json={"application_id": "sp-1"})
    assert r.status_code == 200 and r.json()["token_info"]["principal_type"] == "service_principal"
    assert client.post("/api/2.0/ladle/groups", json={"display_name": "team a"}).status_code == 200
    r = client.post("/api/2.0/ladle/groups/team a/members", json={"service_principal_name": "sp-1"})
    assert r.json() == {"display_name": "team a", "members": [{"name": "sp-1", "type": "service_principal"}]}
