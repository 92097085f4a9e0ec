"""OAuth rows on SQLite and PostgreSQL: a code or refresh token is taken once (two servers
racing for one get it once between them), an expired one never; a service principal's
secrets go with it; a principal exists while it has a row or a token."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from ladle.control.store import Store, TokenRecord


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ladle.db"
    return request.getfixturevalue("postgres").new_database()


def _now() -> int:
    return int(time.time() * 1000)


def test_grants_are_taken_once_and_never_after_expiry(url):
    a, b = Store(url), Store(url)
    a.insert_oauth_grant("h1", "code", {"sub": "ann"}, _now() + 60_000, _now())
    assert b.take_oauth_grant("h1", "refresh", _now()) is None            # another kind
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda s: s.take_oauth_grant("h1", "code", _now()), [a, b] * 4))
    assert [g for g in got if g is not None] == [{"sub": "ann"}]
    a.insert_oauth_grant("h2", "code", {"sub": "ann"}, _now() - 1, _now())
    assert b.take_oauth_grant("h2", "code", _now()) is None
    a.close()
    b.close()


def test_secrets_go_with_their_service_principal_and_existence_follows_rows_and_tokens(url):
    store = Store(url)
    assert store.principal_state("service_principal", "bot") == (False, False)
    store.insert_principal({"id": "1", "kind": "service_principal", "name": "bot", "display_name": "bot",
                            "active": True, "created_ms": _now()})
    store.insert_oauth_secret({"id": "s1", "hash": uuid.uuid4().hex, "principal": "bot", "scopes": ["sql"],
                               "created_ms": _now(), "expiry_ms": _now() + 60_000})
    assert store.oauth_secrets_of("bot")[0]["scopes"] == ["sql"] and store.oauth_secret_exists("s1")
    assert store.principal_state("service_principal", "bot") == (True, False)
    store.delete_principal("service_principal", "bot")
    assert not store.oauth_secret_exists("s1") and store.oauth_secrets_of("bot") == []
    store.insert_token(TokenRecord(id="t", hash="h", principal_type="user", principal="ann", is_admin=True,
                                   comment=None, created_ms=0, expiry_ms=-1, created_by="ladle"))
    assert store.principal_state("user", "ann") == (True, True)
    store.close()
