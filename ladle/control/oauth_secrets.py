"""Service principals' OAuth client secrets (the `client_secret` of the client credentials
grant; the client id is the service principal's applicationId).

A secret is 256 random bits, shown once at creation and stored as its SHA-256 hash (a fast
hash is right for a random value; there is nothing to stretch). It expires after its
lifetime (730 days unless asked otherwise); deleting it revokes it, and the access tokens
issued with it stop working too (control/oauth_auth.py checks that the secret still exists).
Admins and the service principal itself manage its secrets. Every method blocks (store
calls): run them off the event loop."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable

from ladle.control.principals import PrincipalService
from ladle.control.store import Store
from ladle.schemas.errors import ApiError, invalid
from ladle.schemas.oauth import DEFAULT_SECRET_LIFETIME_S, MAX_SECRET_LIFETIME_S
from ladle.schemas.principal import Principal

PREFIX = "dose"      # Databricks' OAuth secrets start so too


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def secret_info(row: dict[str, Any], now_ms: int) -> dict[str, Any]:
    info = {"id": row["id"], "status": "ACTIVE" if row["expiry_ms"] > now_ms else "EXPIRED",
            "create_time": _iso(row["created_ms"]), "update_time": _iso(row["created_ms"]),
            "expire_time": _iso(row["expiry_ms"])}
    if row.get("scopes"):
        info["scopes"] = row["scopes"]
    return info


class OAuthSecrets:
    def __init__(self, store: Store, principals: PrincipalService,
                 on_revoke: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.principals = principals
        self.on_revoke = on_revoke     # drops what authentication cached (a revoked secret's tokens)

    def _owner(self, caller: Principal, sp_id: str) -> str:
        """The applicationId of service principal `sp_id`, if the caller may manage it."""
        sp = self.principals.get("service_principal", sp_id)
        if not caller.is_admin and (caller.kind, caller.name) != ("service_principal", sp["name"]):
            raise ApiError("PERMISSION_DENIED", "Only admins and the service principal itself can "
                           "manage its OAuth secrets.", 403)
        return sp["name"]

    def create(self, caller: Principal, sp_id: str, lifetime: str | None,
               scopes: list[str] | None) -> dict[str, Any]:
        owner = self._owner(caller, sp_id)
        lifetime_s = DEFAULT_SECRET_LIFETIME_S if lifetime is None else int(lifetime.rstrip("s"))
        if not 0 < lifetime_s <= MAX_SECRET_LIFETIME_S:
            raise invalid(f"lifetime: must be between 1 and {MAX_SECRET_LIFETIME_S} seconds")
        secret = PREFIX + secrets.token_hex(32)
        now = int(time.time() * 1000)
        row = {"id": uuid.uuid4().hex, "hash": hash_secret(secret), "principal": owner,
               "scopes": scopes or None, "created_ms": now, "expiry_ms": now + lifetime_s * 1000}
        self.store.insert_oauth_secret(row)
        return {**secret_info(row, now), "secret": secret}

    def list(self, caller: Principal, sp_id: str) -> list[dict[str, Any]]:
        now = int(time.time() * 1000)
        return [secret_info(r, now) for r in self.store.oauth_secrets_of(self._owner(caller, sp_id))]

    def delete(self, caller: Principal, sp_id: str, secret_id: str) -> None:
        if not self.store.delete_oauth_secret(self._owner(caller, sp_id), secret_id):
            raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Secret with id '{secret_id}' does not exist.", 404)
        self.on_revoke()

    def check(self, client_id: str, secret: str) -> dict[str, Any] | None:
        """The live secret row when `secret` is one of service principal `client_id`'s."""
        row = self.store.oauth_secret_by_hash(hash_secret(secret))
        if row is None or not hmac.compare_digest(row["principal"], client_id):
            return None
        if row["expiry_ms"] <= time.time() * 1000:
            return None
        return row
