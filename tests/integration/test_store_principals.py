"""The principals table on SQLite and PostgreSQL: one row per kind and name, and deleting a
principal takes its tokens and group memberships with it, in one write."""

from __future__ import annotations

import time
import uuid

import pytest

from ladle.control.store import Store, TokenRecord


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ladle.db"
    return request.getfixturevalue("postgres").new_database()


def _row(kind: str, name: str) -> dict:
    return {"id": uuid.uuid4().hex[:15], "kind": kind, "name": name, "display_name": name,
            "active": True, "created_ms": int(time.time() * 1000)}


def _token(kind: str, name: str) -> TokenRecord:
    return TokenRecord(id=uuid.uuid4().hex, hash=uuid.uuid4().hex, principal_type=kind, principal=name,
                       is_admin=False, comment=None, created_ms=0, expiry_ms=-1, created_by="admin")


def test_one_row_per_kind_and_name_and_delete_takes_tokens_and_memberships(url):
    store = Store(url)
    assert store.insert_principal(_row("user", "ann"))
    assert not store.insert_principal(_row("user", "ann"))            # refused, nothing written
    assert store.insert_principal(_row("service_principal", "ann"))   # another kind: fine
    for kind in ("user", "service_principal"):
        store.insert_token(_token(kind, "ann"))
        store.add_group_row("g", "ann", kind)
    version = store.version()

    store.delete_principal("user", "ann")
    assert store.version() > version
    assert [(r["kind"], r["name"]) for r in store.principal_rows()] == [("service_principal", "ann")]
    assert [(t.principal_type, t.principal) for t in store.list_tokens()] == [("service_principal", "ann")]
    assert store.group_rows() == [("g", "ann", "service_principal")]
    store.close()


def test_delete_takes_the_principals_grants_and_leaves_everyone_elses(url):
    """A user made again under a deleted user's name starts with no grant of the old one."""
    store = Store(url)
    store.replace_acl("ep1", [("user_name", "ann", "CAN_MANAGE"), ("user_name", "bob", "CAN_QUERY"),
                              ("group_name", "ann", "CAN_VIEW")])
    store.replace_registry_acl("registered-models", "m", [("user_name", "ann", "IS_OWNER"),
                                                          ("service_principal_name", "ann", "CAN_READ")])
    store.insert_scope("s", "ann", manager="ann")
    store.put_secret_acl("s", "bob", "READ")

    store.delete_principal("user", "ann")
    assert sorted(store.acl("ep1")) == [("group_name", "ann", "CAN_VIEW"), ("user_name", "bob", "CAN_QUERY")]
    assert [r[2:] for r in store.registry_acl_rows()] == [("service_principal_name", "ann", "CAN_READ")]
    assert store.secret_acl_rows() == [("s", "bob", "READ")]
    store.close()
