"""Personal access tokens through the real databricks-sdk: `w.tokens` (the caller's own:
create, list, delete) and `w.token_management` (admins: on-behalf-of tokens, list with
filters, get, delete), and a non-admin refused on the admins' API."""

from __future__ import annotations

import secrets

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import PermissionDenied, Unauthenticated


def test_tokens_and_token_management_with_the_sdk(server, workspace):
    app_id = "sp-" + secrets.token_hex(4)
    made = workspace.token_management.create_obo_token(application_id=app_id, comment="obo",
                                                       lifetime_seconds=600)
    assert made.token_value and made.token_info.owner_id > 0
    sp = WorkspaceClient(host=server.url, token=made.token_value)

    own = sp.tokens.create(comment="own", lifetime_seconds=600)
    assert own.token_value.startswith("dapi") and own.token_info.comment == "own"
    assert {t.token_id for t in sp.tokens.list()} == {made.token_info.token_id, own.token_info.token_id}
    by_sp = workspace.token_management.list(created_by_username=app_id)
    assert [t.token_id for t in by_sp] == [own.token_info.token_id]
    assert [t.token_id for t in workspace.token_management.list(
        created_by_id=by_sp[0].created_by_id)] == [own.token_info.token_id]
    with pytest.raises(PermissionDenied):
        list(sp.token_management.list())

    sp.tokens.delete(own.token_info.token_id)
    assert [t.token_id for t in sp.tokens.list()] == [made.token_info.token_id]
    got = workspace.token_management.get(made.token_info.token_id).token_info
    assert got.comment == "obo" and got.created_by_username == "admin" and got.expiry_time > got.creation_time
    workspace.token_management.delete(made.token_info.token_id)
    with pytest.raises(Unauthenticated):
        sp.tokens.list()
