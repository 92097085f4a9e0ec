"""The secret store behind the Databricks `/api/2.0/secrets/*` routes: scopes of keys whose
values are encrypted at rest (Fernet) in ladle's database. The key is LADLE_SECRET_KEY when
set (every server sharing one database needs the same key), else LADLE_HOME/secrets.key
(made at first use, mode 0600). The database never holds a plaintext value or the key.

Values are only ever decrypted inside the server, to resolve `{{secrets/<scope>/<key>}}`
references (external model credentials, environment_vars) and the `*_plaintext` fields of
external model configs, which are sealed with the same key before they are stored.

Who may do what on a scope is in control/secret_acls.py (READ < WRITE < MANAGE, the creator
holding MANAGE). Creating or updating an endpoint whose config references a secret needs READ
on its scope (`check_references`); a served entity then resolves it for as long as that
config is served, whatever changes to the ACL later (as a running Databricks endpoint does).
"""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from cryptography.fernet import InvalidToken

from ladle.control.secret_acls import SecretAcls
from ladle.control.store import Store
from ladle.schemas.errors import ApiError
from ladle.schemas.principal import Principal
from ladle.schemas.secrets import PERMISSIONS

REF_RE = re.compile(r"^\{\{\s*secrets/([^/\s]+)/([^/\s}]+)\s*\}\}$")
SEALED = "ladle-sealed:v1:"



class SealedWithAnotherKey(RuntimeError):
    """A sealed value this server's key cannot open (its database is another server's)."""

class SecretStore:
    def __init__(self, store: Store, home: Path, key: str | None = None) -> None:
        self.store = store
        self.key_file = Path(home) / "secrets.key"
        self._key = key
        self._fernet = None
        # sealed values by (scope, key), for the request path (resolving a reference per
        # external-model request reads no database): read again by every write here (in the
        # writer's thread) and by reload() when another server sharing the database wrote
        self._sealed: dict[tuple[str, str], str] | None = None
        self._sealed_generation = 0
        self._sealed_lock = threading.Lock()
        self.acls = SecretAcls(store)
        self._import_file(Path(home) / "secrets.json")
        self.acls.grant_creators()
        self._read_sealed()

    # -- crypto ------------------------------------------------------------------------
    def _cipher(self):
        if self._fernet is None:
            from cryptography.fernet import Fernet

            if self._key:
                self._fernet = Fernet(self._key.encode())
                return self._fernet
            if not self.key_file.exists():
                self.key_file.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(Fernet.generate_key())
            os.chmod(self.key_file, 0o600)
            self._fernet = Fernet(self.key_file.read_bytes().strip())
        return self._fernet

    def seal(self, value: str) -> str:
        return SEALED + self._cipher().encrypt(value.encode()).decode()

    def unseal(self, value: str) -> str:
        if not value.startswith(SEALED):
            return value
        try:
            return self._cipher().decrypt(value[len(SEALED):].encode()).decode()
        except InvalidToken:
            raise SealedWithAnotherKey(
                "A value in ladle's database was sealed with another secret key than this server's: "
                "servers sharing one database must share one LADLE_SECRET_KEY (or LADLE_HOME's "
                "secrets.key); the database was kept as it is.") from None

    def _import_file(self, path: Path) -> None:
        """Secrets an earlier ladle kept in LADLE_HOME/secrets.json move into the database
        (still sealed with the same key); the file is renamed so it is imported once."""
        if not path.exists():
            return
        import json

        data = json.loads(path.read_text() or "{}")
        for scope, s in data.items():
            creator = s.get("creator", "admin")
            self.store.insert_scope(scope, creator, manager=creator)
            for key, v in s.get("keys", {}).items():
                self.store.put_secret(scope, key, v["value"], int(v["last_updated_timestamp"]))
        path.replace(path.with_suffix(".json.imported"))

    # -- scopes ------------------------------------------------------------------------
    def create_scope(self, p: Principal, scope: str, initial_manage_principal: str | None = None) -> None:
        """`scope` is validated by the API's schema. The creator (or, with
        `initial_manage_principal="users"`, everyone) gets MANAGE."""
        try:
            if not self.store.insert_scope(scope, p.name, manager=initial_manage_principal or p.name):
                raise ApiError("RESOURCE_ALREADY_EXISTS", f"Scope {scope} already exists!", 400)
        finally:
            self.acls.reload()

    def list_scopes(self, p: Principal) -> list[dict[str, str]]:
        """The scopes `p` holds some permission on (admins: every scope)."""
        return [{"name": s, "backend_type": "DATABRICKS"} for s in self.acls.visible(p)]

    def delete_scope(self, p: Principal, scope: str) -> None:
        self.acls.require(p, scope, "MANAGE")
        self.store.delete_scope(scope)
        self.reload()

    def reload(self) -> None:
        self.acls.reload()
        self._read_sealed()

    def _read_sealed(self) -> dict[tuple[str, str], str]:
        """Read every sealed value; kept unless a later read started meanwhile. When the
        database cannot answer, the copy held so far stays (and the error goes up)."""
        with self._sealed_lock:
            self._sealed_generation += 1
            generation = self._sealed_generation
        sealed = self.store.all_secrets()
        with self._sealed_lock:
            if self._sealed_generation == generation:
                self._sealed = sealed
        return sealed

    # -- secrets -----------------------------------------------------------------------
    def put(self, p: Principal, scope: str, key: str, value: str) -> None:
        """`key` and `value` are validated by the API's schema."""
        self.acls.require(p, scope, "WRITE")
        self.store.put_secret(scope, key, self.seal(value), int(time.time() * 1000))
        self.reload()

    def list_secrets(self, p: Principal, scope: str) -> list[dict[str, Any]]:
        self.acls.require(p, scope, "READ")
        return [{"key": k, "last_updated_timestamp": ts}
                for k, (_, ts) in sorted(self.store.secrets_of(scope).items())]

    def delete(self, p: Principal, scope: str, key: str) -> None:
        self.acls.require(p, scope, "WRITE")
        if not self.store.delete_secret(scope, key):
            raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Secret {key} does not exist in scope {scope}!", 404)
        self.reload()

    # -- ACLs (MANAGE) -------------------------------------------------------------------
    def put_acl(self, p: Principal, scope: str, principal: str, permission: str) -> None:
        """Create or overwrite `principal`'s entry (validated by the API's schema)."""
        if permission not in PERMISSIONS:
            raise ApiError("INVALID_PARAMETER_VALUE", f"permission: must be one of {', '.join(PERMISSIONS)}")
        self.acls.require(p, scope, "MANAGE")
        self.acls.put(scope, principal, permission)

    def get_acl(self, p: Principal, scope: str, principal: str) -> dict[str, str]:
        self.acls.require(p, scope, "MANAGE")
        permission = self.acls.entries(scope).get(principal)
        if permission is None:
            raise ApiError("RESOURCE_DOES_NOT_EXIST", f"No ACL for principal {principal} on scope {scope}!", 404)
        return {"principal": principal, "permission": permission}

    def list_acls(self, p: Principal, scope: str) -> list[dict[str, str]]:
        self.acls.require(p, scope, "MANAGE")
        return [{"principal": who, "permission": perm} for who, perm in sorted(self.acls.entries(scope).items())]

    def delete_acl(self, p: Principal, scope: str, principal: str) -> None:
        self.acls.require(p, scope, "MANAGE")
        if not self.acls.delete(scope, principal):
            raise ApiError("RESOURCE_DOES_NOT_EXIST", f"No ACL for principal {principal} on scope {scope}!", 404)

    # -- references in endpoint configs ----------------------------------------------------
    def check_references(self, p: Principal, config: Any, field: str = "config") -> None:
        """Every `{{secrets/<scope>/<key>}}` in an endpoint config needs READ on its scope:
        PERMISSION_DENIED naming the scope (and the field) otherwise. A scope that does not
        exist is refused the same way to a caller who is not an admin."""
        if isinstance(config, BaseModel):
            config = config.model_dump(mode="json", exclude_none=True)
        for where, scope in _references(config, field):
            if p.is_admin:
                continue
            try:
                self.acls.require(p, scope, "READ")
            except ApiError:
                raise ApiError("PERMISSION_DENIED",
                               f"{where}: User {p.name} does not have READ permission on secret scope "
                               f"'{scope}' (or it does not exist).", 403) from None

    # -- resolution (server side only) -------------------------------------------------
    def get_value(self, scope: str, key: str) -> str:
        sealed = self._sealed
        if sealed is None:          # a read at construction failed
            sealed = self._read_sealed()
        found = sealed.get((scope, key))
        if found is None:
            raise ApiError("RESOURCE_DOES_NOT_EXIST",
                           f"Secret reference {{{{secrets/{scope}/{key}}}}} does not resolve: "
                           f"no secret '{key}' in scope '{scope}'.", 400)
        return self.unseal(found)

    def resolve(self, value: str) -> str:
        """A `{{secrets/scope/key}}` reference -> its value; a sealed value -> plaintext."""
        if not isinstance(value, str):
            return value
        m = REF_RE.match(value.strip())
        if m:
            return self.get_value(m.group(1), m.group(2))
        return self.unseal(value)

    def resolve_env(self, env: dict[str, str]) -> dict[str, str]:
        return {k: self.resolve(v) for k, v in env.items()}

    def seal_plaintext(self, obj: Any) -> Any:
        """Seal every `*_plaintext` string (and custom auth `value_plaintext`/`token_plaintext`)."""
        if isinstance(obj, dict):
            return {k: (self.seal(v) if k.endswith("_plaintext") and isinstance(v, str)
                        and not v.startswith(SEALED) else self.seal_plaintext(v))
                    for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.seal_plaintext(v) for v in obj]
        return obj


def _references(obj: Any, where: str) -> list[tuple[str, str]]:
    """(field path, scope) of every secret reference in a JSON-like value."""
    if isinstance(obj, dict):
        return [r for k, v in obj.items() for r in _references(v, f"{where}.{k}")]
    if isinstance(obj, list):
        return [r for i, v in enumerate(obj) for r in _references(v, f"{where}[{i}]")]
    if isinstance(obj, str):
        m = REF_RE.match(obj.strip())
        return [(where, m.group(1))] if m else []
    return []
