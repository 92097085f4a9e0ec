"""Registry permission rows (experiments, registered models) on SQLite and on a real
PostgreSQL: replace, rename, forget, and every write moves the state version."""

from __future__ import annotations

import pytest

from ladle.control.store import Store


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ladle.db"
    return request.getfixturevalue("postgres").new_database()


def test_registry_acl_rows(url):
    store = Store(url)
    name = "main.default." + "m" * 1000                # long names fit
    v0 = store.version()
    store.replace_registry_acl("registered-models", name, [("user_name", "alice", "IS_OWNER"),
                                                           ("group_name", "analysts", "CAN_READ")])
    store.replace_registry_acl("experiments", "7", [("user_name", "bob", "CAN_EDIT")])
    assert sorted(store.registry_acl_rows()) == [
        ("experiments", "7", "user_name", "bob", "CAN_EDIT"),
        ("registered-models", name, "group_name", "analysts", "CAN_READ"),
        ("registered-models", name, "user_name", "alice", "IS_OWNER"),
    ]
    store.replace_registry_acl("registered-models", "other", [("user_name", "carol", "IS_OWNER")])
    store.rename_registry_acl("registered-models", name, "other")    # the old rows of "other" go
    assert sorted(r for r in store.registry_acl_rows() if r[0] == "registered-models") == [
        ("registered-models", "other", "group_name", "analysts", "CAN_READ"),
        ("registered-models", "other", "user_name", "alice", "IS_OWNER"),
    ]
    store.replace_registry_acl("registered-models", "other", [])
    assert store.registry_acl_rows() == [("experiments", "7", "user_name", "bob", "CAN_EDIT")]
    assert store.version() == v0 + 5
