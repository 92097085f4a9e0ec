"""The token APIs in process: the caller's own (`/api/2.0/token/*`) and the admins'
(`/api/2.0/token-management/*`), with who may do what and bad input refused."""

from __future__ import annotations

from ladle.control.principals import stable_id


def _obo(client, user, comment="c"):
    r = client.post("/api/2.0/token-management/on-behalf-of/tokens", json={"user_name": user, "comment": comment})
    assert r.status_code == 200, r.text
    return r.json()


def _as(token):
    return {"Authorization": f"Bearer {token}"}


def test_own_tokens_list_and_delete(client):
    bob = _obo(client, "bob")
    ann = _obo(client, "ann")
    own = client.post("/api/2.0/token/create", json={"comment": "mine", "lifetime_seconds": 600},
                      headers=_as(bob["token_value"])).json()
    listed = client.get("/api/2.0/token/list", headers=_as(bob["token_value"])).json()["token_infos"]
    assert sorted(t["token_id"] for t in listed) == sorted([bob["token_info"]["token_id"],
                                                            own["token_info"]["token_id"]])
    assert "token_value" not in str(listed) and bob["token_value"] not in str(listed)
    # an admin's own list is the admin's tokens only
    admin_own = client.get("/api/2.0/token/list").json()["token_infos"]
    assert bob["token_info"]["token_id"] not in {t["token_id"] for t in admin_own}
    # someone else's token: refused, kept
    r = client.post("/api/2.0/token/delete", json={"token_id": ann["token_info"]["token_id"]},
                    headers=_as(bob["token_value"]))
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
    assert client.get("/api/2.0/serving-endpoints", headers=_as(ann["token_value"])).status_code == 200
    r = client.post("/api/2.0/token/delete", json={"token_id": own["token_info"]["token_id"]},
                    headers=_as(bob["token_value"]))
    assert r.status_code == 200 and r.json() == {}
    assert client.get("/api/2.0/serving-endpoints", headers=_as(own["token_value"])).status_code == 401
    r = client.post("/api/2.0/token/delete", json={}, headers=_as(bob["token_value"]))
    assert r.status_code == 400 and "token_id" in r.json()["message"]


def test_token_management_is_for_admins(client):
    bob = _obo(client, "bob", "for bob")
    tid = bob["token_info"]["token_id"]
    got = client.get(f"/api/2.0/token-management/tokens/{tid}").json()["token_info"]
    assert got["token_id"] == tid and got["comment"] == "for bob" and got["owner_name"] == "bob" and got["owner_id"] == int(stable_id("user", "bob"))
    assert got["created_by_username"] == "admin" and got["created_by_id"] == int(stable_id("user", "admin"))
    for path in ("/api/2.0/token-management/tokens", f"/api/2.0/token-management/tokens/{tid}"):
        r = client.get(path, headers=_as(bob["token_value"]))
        assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
    missing = client.get("/api/2.0/token-management/tokens/nope")
    assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_token_management_list_filters(client):
    bob = _obo(client, "bob")
    own = client.post("/api/2.0/token/create", json={}, headers=_as(bob["token_value"])).json()
    ids = lambda q: {t["token_id"] for t in client.get("/api/2.0/token-management/tokens", params=q).json()["token_infos"]}  # noqa: E731
    assert ids({"created_by_username": "bob"}) == {own["token_info"]["token_id"]}
    assert bob["token_info"]["token_id"] in ids({"created_by_username": "admin"})
    assert ids({"created_by_id": stable_id("user", "bob")}) == {own["token_info"]["token_id"]}
    assert ids({"created_by_username": "nobody"}) == set()
    r = client.get("/api/2.0/token-management/tokens", params={"created_by_id": "x"})
    assert r.status_code == 400 and "created_by_id" in r.json()["message"]
