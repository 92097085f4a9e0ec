"""The JWT signing keys: made once per database, the private key sealed there, the same keys
after a restart and on every server sharing the database; a token is refused when tampered
with, expired, or signed by a key no server of this database made."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.fernet import Fernet

from ladle.control.oauth_keys import SigningKeys, UnknownKey, looks_like_jwt
from ladle.control.secrets import SecretStore
from ladle.control.store import Store


@pytest.fixture
def db(tmp_path):
    return f"sqlite:///{tmp_path / 'ladle.db'}"


def _server(db: str, home, key: str) -> tuple[Store, SigningKeys]:
    store = Store(db)
    sealer = SecretStore(store, home, key)
    keys = SigningKeys(store, sealer.seal, sealer.unseal)
    keys.ensure()
    return store, keys


def test_private_key_is_sealed_in_the_store_and_kept_across_restarts(db, tmp_path):
    key = Fernet.generate_key().decode()
    store, keys = _server(db, tmp_path, key)
    (row,) = store.oauth_keys()
    assert row["private_sealed"].startswith("ladle-sealed:v1:") and "PRIVATE KEY" not in row["private_sealed"]
    token = keys.issue({"sub": "alice", "ladle_kind": "user"}, ttl_s=60)
    store.close()

    store2, again = _server(db, tmp_path, key)      # a restart, or a second server on the database
    assert [r["kid"] for r in store2.oauth_keys()] == [row["kid"]]
    assert again.verify(token)["sub"] == "alice"
    assert again.jwks()["keys"][0]["kid"] == row["kid"]
    store2.close()


def test_a_key_made_by_another_server_is_unknown_until_reloaded(db, tmp_path):
    key = Fernet.generate_key().decode()
    store_a, a = _server(db, tmp_path, key)
    store_b = Store(db)
    sealer = SecretStore(store_b, tmp_path, key)
    b = SigningKeys(store_b, sealer.seal, sealer.unseal)   # started before any key existed
    token = a.issue({"sub": "alice"}, ttl_s=60)
    with pytest.raises(UnknownKey):
        b.verify(token)
    b.reload()
    assert b.verify(token)["sub"] == "alice"
    store_a.close()
    store_b.close()


def test_tampered_expired_and_foreign_tokens_are_refused(db, tmp_path):
    store, keys = _server(db, tmp_path, Fernet.generate_key().decode())
    token = keys.issue({"sub": "alice", "scope": "all-apis"}, ttl_s=60)
    assert looks_like_jwt(token) and not looks_like_jwt("dapi" + "0" * 64)
    head, body, sig = token.split(".")
    other = keys.issue({"sub": "admin", "scope": "all-apis"}, ttl_s=60).split(".")[1]
    with pytest.raises(jwt.InvalidSignatureError):
        keys.verify(f"{head}.{other}.{sig}")
    with pytest.raises(jwt.ExpiredSignatureError):
        keys.verify(keys.issue({"sub": "alice"}, ttl_s=-1))
    _, foreign = _server(f"sqlite:///{tmp_path / 'other.db'}", tmp_path / "o", Fernet.generate_key().decode())
    with pytest.raises(UnknownKey):
        keys.verify(foreign.issue({"sub": "alice"}, ttl_s=60))
    hs = jwt.encode({"sub": "admin", "exp": int(time.time()) + 60, "iat": int(time.time())}, "x" * 32,
                    algorithm="HS256", headers={"kid": jwt.get_unverified_header(token)["kid"]})
    with pytest.raises(jwt.InvalidAlgorithmError):
        keys.verify(hs)
    store.close()
