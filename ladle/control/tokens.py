"""Personal access tokens: stored as SHA-256 hashes, resolved from an in-memory map.

Tokens are 256-bit random values, so a fast hash is the right one (no password
stretching needed); the plaintext is shown once, at creation.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
import time
import uuid
from pathlib import Path
from typing import Callable

from sqlalchemy.exc import IntegrityError

from ladle.control.store import UNAVAILABLE, Store, TokenRecord
from ladle.schemas.errors import ApiError, invalid
from ladle.schemas.principal import Principal

PREFIX = "dapi"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenService:
    def __init__(self, store: Store, groups_of: Callable[[str], frozenset[str]] | None = None) -> None:
        self.store = store
        self.groups_of = groups_of or (lambda _name: frozenset())
        self._by_hash: dict[str, TokenRecord] = {}
        # called after a revoke (control/oauth_auth.py drops the tokens derived from it)
        self.on_revoke: list[Callable[[], None]] = []
        self.reload()

    def reload(self) -> None:
        self._by_hash = {t.hash: t for t in self.store.list_tokens()}

    async def authenticate(self, token: str) -> Principal | None:
        """The token's principal, or None. A token known here is a dict lookup (no thread hop,
        no database). On a shared database an unknown one may have been made on another server
        since the last sync: it is looked up off the event loop; while the database cannot
        answer that is a 503 (TEMPORARILY_UNAVAILABLE), and the tokens known here keep working."""
        h = hash_token(token)
        rec = self._by_hash.get(h)
        if rec is None and self.store.shared:
            try:
                rec = await self.store.call(self.store.token_by_hash, h)
            except UNAVAILABLE:
                raise ApiError("TEMPORARILY_UNAVAILABLE", "ladle's database cannot be reached right "
                               "now to check this token; retry shortly.", 503,
                               headers={"Retry-After": "1"}) from None
            if rec is not None:
                self._by_hash[h] = rec
        if rec is None:
            return None
        if rec.expiry_ms != -1 and rec.expiry_ms < time.time() * 1000:
            return None
        return Principal(name=rec.principal, kind=rec.principal_type, is_admin=rec.is_admin,
                         groups=frozenset({"users"} | ({"admins"} if rec.is_admin else set()))
                         | self.groups_of(rec.principal),
                         token_id=rec.id)

    def expiry_s(self, token: str) -> float | None:
        """A token known here: when it expires (epoch seconds); None when it never does."""
        rec = self._by_hash.get(hash_token(token))
        return None if rec is None or rec.expiry_ms == -1 else rec.expiry_ms / 1000

    def create(self, principal: str, kind: str, created_by: str, comment: str | None = None,
               lifetime_s: int | None = None, is_admin: bool = False, value: str | None = None) -> tuple[str, TokenRecord]:
        if not principal or len(principal) > 256:
            raise invalid("user_name: a principal name of 1-256 characters is required")
        if lifetime_s is not None and lifetime_s < 0:
            raise invalid("lifetime_seconds: must not be negative")
        token = value or PREFIX + secrets.token_hex(32)
        now = int(time.time() * 1000)
        rec = TokenRecord(
            id=uuid.uuid4().hex, hash=hash_token(token), principal_type=kind, principal=principal,
            is_admin=is_admin, comment=comment, created_ms=now,
            expiry_ms=now + lifetime_s * 1000 if lifetime_s else -1, created_by=created_by,
        )
        self.store.insert_token(rec)
        self._by_hash[rec.hash] = rec
        return token, rec

    def list(self) -> list[TokenRecord]:
        return list(self._by_hash.values())

    def revoke(self, token_id: str, caller: Principal) -> None:
        # A copy: creates and revokes run in worker threads while the event loop reads the map.
        rec = next((t for t in list(self._by_hash.values()) if t.id == token_id), None)
        if rec is None:
            raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Token with id '{token_id}' does not exist.")
        if not caller.is_admin and rec.principal != caller.name:
            raise ApiError("PERMISSION_DENIED", "Only admins can revoke other principals' tokens.")
        self.store.delete_token(token_id)
        self._by_hash.pop(rec.hash, None)
        for hook in self.on_revoke:
            hook()

    def forget_principal(self, kind: str, name: str) -> None:
        """Drop the principal's tokens from the map (the store deleted them already)."""
        self._by_hash = {h: t for h, t in self._by_hash.items()
                         if (t.principal_type, t.principal) != (kind, name)}

    def bootstrap_admin(self, home: Path, admin_token: str | None) -> str | None:
        """Make sure an admin token exists. Returns the path of a generated token file."""
        if admin_token:
            if hash_token(admin_token) not in self._by_hash:
                try:
                    self.create("admin", "user", "ladle", "from LADLE_ADMIN_TOKEN", is_admin=True,
                                value=admin_token)
                except IntegrityError:   # another server sharing the database stored it first
                    self.reload()
            return None
        path = home / "admin-token"
        if path.exists():
            tok = path.read_text().strip()
            if hash_token(tok) in self._by_hash:
                return str(path)
        if any(t.is_admin for t in self._by_hash.values()) and not path.exists():
            return None
        tok, _ = self.create("admin", "user", "ladle", "generated at first start", is_admin=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "w") as f:
            f.write(tok + "\n")
        os.chmod(path, 0o600)
        return str(path)


def token_info(t: TokenRecord, owner_id: int) -> dict:
    """`owner_id`: the owner's SCIM id (an int64, as databricks-sdk parses it); `owner_name`
    and `principal_type` (ladle's) name the owner."""
    return {
        "token_id": t.id, "comment": t.comment or "", "creation_time": t.created_ms,
        "expiry_time": t.expiry_ms, "owner_id": owner_id, "owner_name": t.principal,
        "created_by_username": t.created_by, "principal_type": t.principal_type,
    }
