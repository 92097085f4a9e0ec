"""OAuth rows: signing keys (the private key arrives sealed), service principals' client
secrets (SHA-256 hashes only), and authorization codes and refresh tokens (hashes only).

Codes and refresh tokens are taken with one DELETE whose row count says who got it: of two
servers sharing the database that redeem the same code at once, exactly one succeeds. They
change no cache, so they are written without bumping the state version."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select

from ladle.control.store_tables import (
    Rows, dump_json, load_json, oauth_grants_t, oauth_keys_t, oauth_secrets_t, principals_t, tokens_t,
)


class OAuthRows(Rows):
    # -- signing keys --------------------------------------------------------------------
    def oauth_keys(self) -> list[dict[str, Any]]:
        """Every key, oldest first (the oldest signs: servers agree on it)."""
        with self.engine.connect() as c:
            rows = c.execute(select(oauth_keys_t).order_by(oauth_keys_t.c.created_ms,
                                                           oauth_keys_t.c.kid)).all()
        return [dict(r._mapping) for r in rows]

    def insert_oauth_key(self, row: dict[str, Any]) -> None:
        with self._write() as c:
            c.execute(insert(oauth_keys_t).values(**row))

    # -- service principals' client secrets ------------------------------------------------
    def insert_oauth_secret(self, row: dict[str, Any]) -> None:
        with self._write() as c:
            c.execute(insert(oauth_secrets_t).values(**{**row, "scopes": dump_json(row.get("scopes"))}))

    def oauth_secrets_of(self, principal: str) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            rows = c.execute(select(oauth_secrets_t).where(oauth_secrets_t.c.principal == principal)
                             .order_by(oauth_secrets_t.c.created_ms)).all()
        return [_secret(r) for r in rows]

    def oauth_secret_by_hash(self, secret_hash: str) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            r = c.execute(select(oauth_secrets_t).where(oauth_secrets_t.c.hash == secret_hash)).first()
        return None if r is None else _secret(r)

    def oauth_secret_exists(self, secret_id: str) -> bool:
        with self.engine.connect() as c:
            return c.execute(select(oauth_secrets_t.c.id)
                             .where(oauth_secrets_t.c.id == secret_id)).first() is not None

    def delete_oauth_secret(self, principal: str, secret_id: str) -> bool:
        with self._write() as c:
            return c.execute(delete(oauth_secrets_t).where(
                (oauth_secrets_t.c.id == secret_id) & (oauth_secrets_t.c.principal == principal))).rowcount > 0

    # -- codes and refresh tokens ------------------------------------------------------------
    def insert_oauth_grant(self, grant_hash: str, kind: str, data: dict[str, Any], expiry_ms: int,
                           now_ms: int) -> None:
        with self.engine.begin() as c:
            c.execute(delete(oauth_grants_t).where(oauth_grants_t.c.expiry_ms < now_ms))
            c.execute(insert(oauth_grants_t).values(hash=grant_hash, kind=kind, data=dump_json(data),
                                                    expiry_ms=expiry_ms))

    def take_oauth_grant(self, grant_hash: str, kind: str, now_ms: int) -> dict[str, Any] | None:
        """The grant's data, once: it is deleted in the same transaction. None when unknown,
        already taken, of another kind or expired."""
        with self.engine.begin() as c:
            r = c.execute(select(oauth_grants_t).where(oauth_grants_t.c.hash == grant_hash)).first()
            if r is None or r.kind != kind:
                return None
            if c.execute(delete(oauth_grants_t).where(oauth_grants_t.c.hash == grant_hash)).rowcount != 1:
                return None       # another server took it first
        return load_json(r.data) if r.expiry_ms >= now_ms else None

    # -- who a token names ---------------------------------------------------------------------
    def token_id_exists(self, token_id: str) -> bool:
        """Whether the personal access token with this id still exists."""
        with self.engine.connect() as c:
            return c.execute(select(tokens_t.c.id).where(tokens_t.c.id == token_id)).first() is not None

    def principal_state(self, kind: str, name: str) -> tuple[bool, bool]:
        """(exists, is_admin): a principal exists when it has a row or a personal token names
        it; it is an admin when one of its tokens is an admin token."""
        with self.engine.connect() as c:
            row = c.execute(select(principals_t.c.id).where(
                (principals_t.c.kind == kind) & (principals_t.c.name == name))).first()
            admins = [t.is_admin for t in c.execute(select(tokens_t.c.is_admin).where(
                (tokens_t.c.principal_type == kind) & (tokens_t.c.principal == name))).all()]
        return row is not None or bool(admins), any(admins)


def _secret(r: Any) -> dict[str, Any]:
    d = dict(r._mapping)
    d["scopes"] = load_json(d["scopes"])
    return d
