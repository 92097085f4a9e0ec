"""SCIM in process: bad bodies and filters are 400s in SCIM's error shape (with the error
code the SDK maps) naming the field, and change nothing; membership by id for users and
service principals; paging as the SDK pages."""

from __future__ import annotations

from typing import Any

import pytest

SCIM = "/api/2.0/preview/scim/v2"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def _state(client) -> Any:
    return [client.get(SCIM + p).json()["Resources"] for p in ("/Users", "/ServicePrincipals", "/Groups")]


@pytest.fixture
def group(client) -> dict[str, Any]:
    r = client.post(SCIM + "/Groups", json={"displayName": "g"})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("method, path, body, field", [
    ("post", "/Users", {}, "userName"),
    ("post", "/Users", {"userName": 7}, "userName"),
    ("post", "/Users", {"userName": "x", "active": False}, "active"),
    ("post", "/Users", {"userName": "x", "groups": [{"value": "no-such-group"}]}, "Group with id"),
    ("post", "/ServicePrincipals", {"displayName": ""}, "displayName"),
    ("post", "/Groups", {"displayName": "users"}, "built-in"),
    ("post", "/Groups", {"displayName": "h", "members": [{"value": "404"}]}, "No user or service principal"),
    ("patch", "/Groups/{g}", {"Operations": []}, "Operations"),
    ("patch", "/Groups/{g}", {"Operations": [{"op": "move"}]}, "Operations.0.op"),
    ("patch", "/Groups/{g}", {"Operations": [{"op": "add", "path": "members", "value": "x"}]},
     "Operations.0.value"),
    ("patch", "/Groups/{g}", {"Operations": [{"op": "replace", "path": "displayName", "value": "z"}]},
     "Operations.0"),
    ("get", "/Users?filter=userName%20eq%20bob", None, "filter"),
    ("get", "/Users?count=-1", None, "count"),
])
def test_bad_input_is_a_scim_400_naming_the_field_and_changes_nothing(client, group, method, path, body, field):
    before = _state(client)
    kwargs = {"json": body} if body is not None else {}
    r = getattr(client, method)(SCIM + path.format(g=group["id"]), **kwargs)
    assert r.status_code in (400, 404), r.text
    err = r.json()
    assert err["schemas"] == [ERROR] and err["status"] == str(r.status_code)
    assert err["error_code"] in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST")
    assert "detail" not in err and field in err["message"]
    assert _state(client) == before


def test_members_by_id_and_paging(client, group):
    u = client.post(SCIM + "/Users", json={"userName": "ann@example.com", "groups": [{"value": group["id"]}]}).json()
    sp = client.post(SCIM + "/ServicePrincipals", json={"displayName": "bot"}).json()
    r = client.patch(SCIM + f"/Groups/{group['id']}", json={"Operations": [
        {"op": "Add", "value": {"members": [{"value": sp["id"]}]}}]})     # Azure's form
    assert r.status_code == 200, r.text
    assert {m["value"] for m in r.json()["members"]} == {u["id"], sp["id"]}
    assert [g["display"] for g in client.get(SCIM + f"/ServicePrincipals/{sp['id']}").json()["groups"]] == \
        ["users", "g"]
    # The SDK pages with startIndex/count until an empty page.
    names = []
    start = 1
    while True:
        page = client.get(SCIM + "/Users", params={"startIndex": start, "count": 1}).json()
        if not page["Resources"]:
            break
        assert page["itemsPerPage"] == 1 and page["totalResults"] == 2
        names += [x["userName"] for x in page["Resources"]]
        start += 1
    assert names == ["admin", "ann@example.com"]
    only = client.get(SCIM + "/Users", params={"attributes": "userName"}).json()["Resources"][0]
    assert set(only) == {"id", "userName", "schemas"}
    # Deleting the user drops its membership.
    assert client.delete(SCIM + f"/Users/{u['id']}").status_code == 200
    assert [m["value"] for m in client.get(SCIM + f"/Groups/{group['id']}").json()["members"]] == [sp["id"]]
