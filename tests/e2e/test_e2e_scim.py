"""SCIM through the real databricks-sdk (`w.current_user`, `w.users`, `w.service_principals`,
`w.groups`) on the session server: who am I, principals made, listed, filtered, fetched and
deleted (their tokens with them), groups whose members show in me() and grant endpoint
permissions by `group_name`, and non-admins refused on every write."""

from __future__ import annotations

import secrets

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    InvalidParameterValue, NotFound, PermissionDenied, ResourceAlreadyExists, Unauthenticated,
)
from databricks.sdk.service.iam import ComplexValue, Patch, PatchOp, PatchSchema
from databricks.sdk.service.serving import (
    ServingEndpointAccessControlRequest, ServingEndpointPermissionLevel,
)

from e2e_support import client

EXTERNAL = {"name": "m", "provider": "custom", "task": "llm/v1/chat",
            "custom_provider_config": {"custom_provider_url": "http://127.0.0.1:9/v1",
                                       "bearer_token_auth": {"token_plaintext": "not-a-real-key"}}}


def _ws(server, token: str) -> WorkspaceClient:
    return WorkspaceClient(host=server.url, token=token)


@pytest.fixture(scope="module")
def tag() -> str:
    return secrets.token_hex(3)


@pytest.fixture(scope="module")
def w(server) -> WorkspaceClient:
    return _ws(server, server.admin_token)


def _token_for(w: WorkspaceClient, user: str) -> str:
    # ladle's on-behalf-of tokens also take a user (`user_name`): not in the SDK's signature.
    return w.api_client.do("POST", "/api/2.0/token-management/on-behalf-of/tokens",
                           body={"user_name": user, "comment": "scim e2e"})["token_value"]


def test_me_answers_for_the_admin_and_for_an_ordinary_user(server, w, tag):
    me = w.current_user.me()
    assert me.user_name == "admin" and me.active
    assert {"users", "admins"} <= {g.display for g in me.groups}

    name = f"carol-{tag}@example.com"
    carol = _ws(server, _token_for(w, name)).current_user.me()
    assert carol.user_name == name and carol.display_name == name
    assert [e.value for e in carol.emails] == [name]
    assert {g.display for g in carol.groups} == {"users"}
    # A user that only a token names is listed, with the id me() gave.
    assert [u.id for u in w.users.list(filter=f'userName eq "{name}"')] == [carol.id]


def test_users_and_service_principals_create_list_get_delete(server, w, tag):
    name = f"dave-{tag}@example.com"
    dave = w.users.create(user_name=name, display_name="Dave")
    assert dave.user_name == name and dave.id
    with pytest.raises(ResourceAlreadyExists):
        w.users.create(user_name=name)
    found = list(w.users.list(filter=f'userName eq "{name.upper()}"'))   # case-insensitive
    assert [(u.id, u.display_name) for u in found] == [(dave.id, "Dave")]
    assert "admin" in {u.user_name for u in w.users.list()}
    assert w.users.get(dave.id).user_name == name
    with pytest.raises(InvalidParameterValue, match="filter"):
        list(w.users.list(filter='nickName eq "x"'))

    sp = w.service_principals.create(display_name=f"etl {tag}")
    assert sp.application_id and sp.display_name == f"etl {tag}"
    listed = list(w.service_principals.list(filter=f'applicationId eq "{sp.application_id}"'))
    assert [s.id for s in listed] == [sp.id]
    assert [s.id for s in w.service_principals.list(filter=f'displayName sw "etl {tag}"')] == [sp.id]

    # Deleting a principal revokes its tokens: the next call with one is a 401.
    dave_ws = _ws(server, _token_for(w, name))
    assert dave_ws.current_user.me().id == dave.id
    w.users.delete(dave.id)
    with pytest.raises(Unauthenticated):
        dave_ws.current_user.me()
    with pytest.raises(NotFound):
        w.users.get(dave.id)
    assert list(w.users.list(filter=f'userName eq "{name}"')) == []
    w.service_principals.delete(sp.id)
    with pytest.raises(NotFound):
        w.service_principals.get(sp.id)


def test_groups_membership_shows_in_me_and_grants_by_group_name(server, w, tag):
    user = f"erin-{tag}"
    erin = _ws(server, _token_for(w, user))
    erin_id = erin.current_user.me().id
    g = w.groups.create(display_name=f"analysts-{tag}")
    assert [x.id for x in w.groups.list(filter=f'displayName eq "analysts-{tag}"')] == [g.id]
    w.groups.patch(g.id, schemas=[PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP],
                   operations=[Patch(op=PatchOp.ADD, path="members", value=[{"value": erin_id}])])
    assert [m.value for m in w.groups.get(g.id).members] == [erin_id]
    assert f"analysts-{tag}" in {x.display for x in erin.current_user.me().groups}

    name = f"scim-{tag}"
    with client(server) as admin:
        entity = {"name": "ext", "external_model": EXTERNAL}
        r = admin.post("/api/2.0/serving-endpoints", json={"name": name, "config": {"served_entities": [entity]}})
        assert r.status_code == 200, r.text
    try:
        w.serving_endpoints.set_permissions(r.json()["id"], access_control_list=[
            ServingEndpointAccessControlRequest(group_name=f"analysts-{tag}",
                                                permission_level=ServingEndpointPermissionLevel.CAN_VIEW)])
        assert erin.serving_endpoints.get(name).name == name        # through the group

        w.groups.patch(g.id, operations=[Patch(op=PatchOp.REMOVE, path=f'members[value eq "{erin_id}"]')])
        assert w.groups.get(g.id).members in (None, [])
        with pytest.raises(NotFound):
            erin.serving_endpoints.get(name)
    finally:
        w.serving_endpoints.delete(name)
    w.groups.delete(g.id)
    with pytest.raises(NotFound):
        w.groups.get(g.id)
    with pytest.raises(InvalidParameterValue):      # built-in
        w.groups.delete(next(iter(w.groups.list(filter='displayName eq "users"'))).id)


def test_non_admins_read_but_cannot_write(server, w, tag):
    frank = _ws(server, _token_for(w, f"frank-{tag}"))
    assert any(u.user_name == "admin" for u in frank.users.list())
    users_group = next(iter(frank.groups.list(filter='displayName eq "users"')))
    admin_id = w.current_user.me().id
    with pytest.raises(PermissionDenied):
        frank.users.create(user_name=f"mallory-{tag}")
    with pytest.raises(PermissionDenied):
        frank.service_principals.create(display_name="mallory")
    with pytest.raises(PermissionDenied):
        frank.users.delete(admin_id)
    with pytest.raises(PermissionDenied):
        frank.groups.create(display_name=f"mallory-{tag}")
    with pytest.raises(PermissionDenied):
        frank.groups.patch(users_group.id, operations=[
            Patch(op=PatchOp.ADD, path="members", value=[ComplexValue(value=admin_id).as_dict()])])
    assert list(w.users.list(filter=f'userName eq "mallory-{tag}"')) == []
    assert list(w.groups.list(filter=f'displayName eq "mallory-{tag}"')) == []
