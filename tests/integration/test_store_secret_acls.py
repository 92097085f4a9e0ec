"""The secret_acls table on SQLite and on a real PostgreSQL: the creator's entry is written
with the scope, an entry is overwritten in place, a scope that does not exist takes none,
and deleting a scope deletes its entries. Every write moves the state version."""

from __future__ import annotations

import pytest

from ladle.control.store import Store


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ladle.db"
    return request.getfixturevalue("postgres").new_database()


def test_secret_acl_rows(url):
    a, b = Store(url), Store(url)                     # two servers on one database
    v0 = b.version()
    assert a.insert_scope("llm", "alice", manager="alice")
    assert not a.insert_scope("llm", "bob", manager="bob")     # taken: nothing written
    assert b.secret_acl_rows() == [("llm", "alice", "MANAGE")]
    assert a.put_secret_acl("llm", "data team", "READ")
    assert a.put_secret_acl("llm", "data team", "WRITE")       # overwritten, not duplicated
    assert sorted(b.secret_acl_rows()) == [("llm", "alice", "MANAGE"), ("llm", "data team", "WRITE")]
    assert not a.put_secret_acl("nope", "bob", "READ")
    assert a.delete_secret_acl("llm", "data team") and not a.delete_secret_acl("llm", "data team")
    assert b.version() > v0
    a.insert_scope("other", "bob", manager="users")
    a.delete_scope("llm")
    assert b.secret_acl_rows() == [("other", "users", "MANAGE")]
