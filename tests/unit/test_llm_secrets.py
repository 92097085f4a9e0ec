"""The secret store: encrypted at rest in the database, key file 0600 (or LADLE_SECRET_KEY),
references and sealed plaintext; secrets.json of an earlier ladle imported once."""

from __future__ import annotations

import json
import stat

import pytest

from ladle.control.secrets import SEALED, SecretStore as _SecretStore
from ladle.control.store import Store
from ladle.schemas.errors import ApiError
from ladle.schemas.principal import Principal

ADMIN = Principal("admin", is_admin=True)
BOB = Principal("bob")


def SecretStore(home, key=None):  # noqa: N802 - the store as the server builds it
    return _SecretStore(Store(f"sqlite:///{home}/ladle.db"), home, key)


def test_put_resolve_and_encryption_at_rest(tmp_path):
    s = SecretStore(tmp_path)
    s.create_scope(ADMIN, "llm")
    s.put(ADMIN, "llm", "openai", "sk-very-secret")
    assert b"sk-very-secret" not in (tmp_path / "ladle.db").read_bytes()
    assert stat.S_IMODE((tmp_path / "secrets.key").stat().st_mode) == 0o600
    assert s.resolve("{{secrets/llm/openai}}") == "sk-very-secret"
    assert s.resolve("{{ secrets/llm/openai }}") == "sk-very-secret"
    assert s.resolve("plain") == "plain"
    assert SecretStore(tmp_path).resolve("{{secrets/llm/openai}}") == "sk-very-secret"  # same key file
    assert s.list_secrets(ADMIN, "llm")[0]["key"] == "openai" and "value" not in s.list_secrets(ADMIN, "llm")[0]
    assert s.resolve_env({"A": "{{secrets/llm/openai}}", "B": "x"}) == {"A": "sk-very-secret", "B": "x"}


def test_missing_and_permissions(tmp_path):
    s = SecretStore(tmp_path)
    s.create_scope(BOB, "bobs")
    with pytest.raises(ApiError) as e:
        s.create_scope(ADMIN, "bobs")
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(ApiError) as e:
        s.resolve("{{secrets/bobs/nope}}")
    assert e.value.status == 400 and "nope" in e.value.message
    with pytest.raises(ApiError) as e:
        s.put(Principal("eve"), "bobs", "k", "v")
    assert e.value.status == 403
    s.put(BOB, "bobs", "k", "v")
    s.delete(BOB, "bobs", "k")
    with pytest.raises(ApiError) as e:
        s.delete(BOB, "bobs", "k")
    assert e.value.status == 404
    s.delete_scope(ADMIN, "bobs")
    assert s.list_scopes(ADMIN) == []


def test_seal_plaintext_fields(tmp_path):
    s = SecretStore(tmp_path)
    cfg = {"provider": "custom", "custom_provider_config": {
        "custom_provider_url": "http://x", "bearer_token_auth": {"token_plaintext": "tok-123"}},
        "openai_config": {"openai_api_key_plaintext": "sk-1", "openai_api_key": "{{secrets/a/b}}"}}
    sealed = s.seal_plaintext(cfg)
    dumped = json.dumps(sealed)
    assert "tok-123" not in dumped and "sk-1" not in dumped and "{{secrets/a/b}}" in dumped
    tok = sealed["custom_provider_config"]["bearer_token_auth"]["token_plaintext"]
    assert tok.startswith(SEALED) and s.resolve(tok) == "tok-123"
    assert s.seal_plaintext(sealed) == sealed   # sealing twice changes nothing


def test_shared_key_from_settings_and_no_key_file(tmp_path):
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    a = SecretStore(tmp_path, key)
    a.create_scope(ADMIN, "llm")
    a.put(ADMIN, "llm", "k", "v-1")
    assert not (tmp_path / "secrets.key").exists()
    assert SecretStore(tmp_path, key).get_value("llm", "k") == "v-1"     # another server, same key
    with pytest.raises(Exception):
        SecretStore(tmp_path, Fernet.generate_key().decode()).get_value("llm", "k")


def test_secrets_json_of_an_earlier_ladle_is_imported_once(tmp_path):
    old = SecretStore(tmp_path)
    sealed = old.seal("sk-old")
    (tmp_path / "secrets.json").write_text(json.dumps({"llm": {"creator": "bob", "keys": {
        "openai": {"value": sealed, "last_updated_timestamp": 123}}}}))
    s = SecretStore(tmp_path)
    assert s.resolve("{{secrets/llm/openai}}") == "sk-old"
    assert s.list_secrets(ADMIN, "llm") == [{"key": "openai", "last_updated_timestamp": 123}]
    assert not (tmp_path / "secrets.json").exists() and (tmp_path / "secrets.json.imported").exists()
    s.put(BOB, "llm", "openai", "sk-new")            # the creator kept MANAGE
    assert SecretStore(tmp_path).resolve("{{secrets/llm/openai}}") == "sk-new"


def test_another_servers_change_is_resolved_after_a_resync(tmp_path):
    """Resolution reads the secrets once (the request path does not query the database per
    request); a write on this server is seen at once, another server's after reload()
    (StateSync calls it when the shared database's state version moves)."""
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    here, there = SecretStore(tmp_path, key), SecretStore(tmp_path, key)
    here.create_scope(ADMIN, "llm")
    here.put(ADMIN, "llm", "k", "v1")
    assert here.get_value("llm", "k") == "v1"
    there.put(ADMIN, "llm", "k", "v2")
    here.put(ADMIN, "llm", "other", "x")              # a local write: read again at once
    assert here.get_value("llm", "k") == "v2"
    there.delete(ADMIN, "llm", "k")
    here.reload()
    with pytest.raises(ApiError):
        here.get_value("llm", "k")


def test_resolution_reads_no_database_and_an_outage_keeps_the_copy(tmp_path, monkeypatch):
    """Writes and reload() read the sealed values in their own thread; resolving (on the
    request path) never does, and a reload the database cannot answer keeps what was read."""
    s = SecretStore(tmp_path)
    s.create_scope(ADMIN, "llm")
    s.put(ADMIN, "llm", "k", "v1")

    def away():
        raise ConnectionError("database away")

    monkeypatch.setattr(s.store, "all_secrets", away)
    assert s.get_value("llm", "k") == "v1"
    with pytest.raises(ConnectionError):
        s.reload()
    assert s.resolve("{{secrets/llm/k}}") == "v1"


def test_a_server_with_another_secret_key_is_told_why_it_cannot_unseal(tmp_path):
    from cryptography.fernet import Fernet

    from ladle.control.secrets import SealedWithAnotherKey

    first = SecretStore(tmp_path, Fernet.generate_key().decode())
    sealed = first.seal("signing key")
    other = SecretStore(tmp_path, Fernet.generate_key().decode())
    with pytest.raises(SealedWithAnotherKey, match="LADLE_SECRET_KEY"):
        other.unseal(sealed)
    assert first.unseal(sealed) == "signing key"
