"""Secret ACLs end to end, on the shared server, with the databricks-sdk: two ordinary users
(tokens made by the admin). B can neither see, list, write nor manage A's scope until A grants
READ, WRITE or MANAGE, and then can do exactly what was granted; B's external-model endpoint
referencing A's secret is refused until B may READ the scope."""

from __future__ import annotations

import secrets

import pytest

from e2e_support import client


def _workspace(server, token: str):
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    return WorkspaceClient(config=Config(host=server.url, token=token, retry_timeout_seconds=10))


@pytest.fixture(scope="module")
def users(server, admin):
    """Two ordinary users, A and B, each with a token the admin made."""
    suffix = secrets.token_hex(4)
    out = {}
    for who in ("a", "b"):
        name = f"acl-{who}-{suffix}"
        r = admin.post("/api/2.0/token-management/on-behalf-of/tokens", json={"user_name": name})
        assert r.status_code == 200, r.text
        out[who] = (name, _workspace(server, r.json()["token_value"]))
    return out


def _refused(fn, *args, **kwargs) -> str:
    from databricks.sdk.errors import PermissionDenied

    with pytest.raises(PermissionDenied) as e:
        fn(*args, **kwargs)
    return str(e.value)


def test_b_gets_exactly_what_a_grants(users):
    from databricks.sdk.errors import NotFound
    from databricks.sdk.service.workspace import AclPermission

    (a_name, a), (b_name, b) = users["a"], users["b"]
    scope = f"acl-scope-{secrets.token_hex(4)}"
    a.secrets.create_scope(scope)
    a.secrets.put_secret(scope, "k1", string_value="v1")
    assert [(i.principal, i.permission) for i in a.secrets.list_acls(scope)] == [(a_name, AclPermission.MANAGE)]

    def b_can_list() -> bool:
        try:
            return [s.key for s in b.secrets.list_secrets(scope)] != []
        except Exception as e:                      # noqa: BLE001 - the SDK's PermissionDenied
            assert "permission" in str(e).lower(), e
            return False

    # nothing granted: B does not even see the scope
    assert scope not in [s.name for s in b.secrets.list_scopes()]
    assert not b_can_list()
    assert scope in _refused(b.secrets.put_secret, scope, "k2", string_value="x")
    _refused(b.secrets.delete_secret, scope, "k1")
    _refused(b.secrets.list_acls, scope)
    _refused(b.secrets.put_acl, scope, b_name, AclPermission.MANAGE)
    _refused(b.secrets.delete_scope, scope)

    # READ: list, nothing more
    a.secrets.put_acl(scope, b_name, AclPermission.READ)
    got = a.secrets.get_acl(scope, b_name)
    assert (got.principal, got.permission) == (b_name, AclPermission.READ)
    assert scope in [s.name for s in b.secrets.list_scopes()]
    assert [s.key for s in b.secrets.list_secrets(scope)] == ["k1"]
    _refused(b.secrets.put_secret, scope, "k2", string_value="x")
    _refused(b.secrets.delete_secret, scope, "k1")
    _refused(b.secrets.get_acl, scope, b_name)

    # WRITE: put and delete secrets, still no ACLs
    a.secrets.put_acl(scope, b_name, AclPermission.WRITE)
    b.secrets.put_secret(scope, "k2", string_value="from-b")
    b.secrets.delete_secret(scope, "k1")
    assert [s.key for s in a.secrets.list_secrets(scope)] == ["k2"]
    _refused(b.secrets.list_acls, scope)
    _refused(b.secrets.delete_scope, scope)

    # MANAGE: the ACLs too
    a.secrets.put_acl(scope, b_name, AclPermission.MANAGE)
    assert sorted((i.principal, i.permission.value) for i in b.secrets.list_acls(scope)) == sorted(
        [(a_name, "MANAGE"), (b_name, "MANAGE")])

    # revoked: back to nothing
    a.secrets.delete_acl(scope, b_name)
    with pytest.raises(NotFound):
        a.secrets.get_acl(scope, b_name)
    assert not b_can_list()
    assert [i.principal for i in a.secrets.list_acls(scope)] == [a_name]
    a.secrets.delete_scope(scope)
    with pytest.raises(NotFound):
        list(a.secrets.list_secrets(scope))


def test_endpoint_referencing_a_scope_its_creator_cannot_read_is_refused(server, admin, users):
    from databricks.sdk.service.serving import (
        EndpointCoreConfigInput, ExternalModel, ExternalModelProvider, OpenAiConfig, ServedEntityInput,
    )
    from databricks.sdk.service.workspace import AclPermission

    (_, a), (b_name, b) = users["a"], users["b"]
    scope, name = f"acl-llm-{secrets.token_hex(4)}", f"acl-ext-{secrets.token_hex(4)}"
    a.secrets.create_scope(scope)
    a.secrets.put_secret(scope, "openai", string_value="sk-of-a")
    config = EndpointCoreConfigInput(name=name, served_entities=[ServedEntityInput(external_model=ExternalModel(
        name="gpt-acl", provider=ExternalModelProvider.OPENAI, task="llm/v1/chat",
        openai_config=OpenAiConfig(openai_api_key=f"{{{{secrets/{scope}/openai}}}}",
                                   openai_api_base="http://127.0.0.1:9")))])
    message = _refused(b.serving_endpoints.create, name, config=config)
    assert scope in message and "READ" in message
    with client(server) as http:                    # nothing was created
        assert http.get(f"/api/2.0/serving-endpoints/{name}").status_code == 404

    a.secrets.put_acl(scope, b_name, AclPermission.READ)
    try:
        created = b.serving_endpoints.create(name, config=config).response
        assert created.name == name and created.creator == b_name
    finally:
        admin.delete(f"/api/2.0/serving-endpoints/{name}")
        a.secrets.delete_scope(scope)
