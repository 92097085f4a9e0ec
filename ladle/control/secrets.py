"""The secret store behind the Databricks `/api/2.0/secrets/*` routes: scopes of keys whose
values are encrypted at rest (Fernet) in ladle's database. The key is LADLE_SECRET_KEY when
set (every server sharing one database needs the same key), else LADLE_HOME/secrets.key
(made at first use, mode 0600). The database never holds a plaintext value or the key.

Values are only ever decrypted inside the server, to resolve `{{secrets/<scope>/<key>}}`
references (external model credentials, environment_vars) and the `*_plaintext` fields of
external model configs, which are sealed with the same key before they are stored.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from ladle.control.store import Store
from ladle.schemas.errors import ApiError, invalid
from ladle.schemas.principal import Principal

REF_RE = re.compile(r"^\{\{\s*secrets/([^/\s]+)/([^/\s}]+)\s*\}\}$")
SCOPE_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,128}$")
KEY_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
SEALED = "ladle-sealed:v1:"
MAX_VALUE_BYTES = 128 * 1024


class SecretStore:
    def __init__(self, store: Store, home: Path, key: str | None = None) -> None:
        self.store = store
        self.key_file = Path(home) / "secrets.key"
        self._key = key
        self._fernet = None
        # sealed values by (scope, key), read once for the request path (resolving a
        # reference per external-model request); dropped on every write here and on
        # reload() when another server sharing the database wrote
        self._sealed: dict[tuple[str, str], str] | None = None
        self._import_file(Path(home) / "secrets.json")

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
        return self._cipher().decrypt(value[len(SEALED):].encode()).decode()

    def _import_file(self, path: Path) -> None:
        """Secrets an earlier ladle kept in LADLE_HOME/secrets.json move into the database
        (still sealed with the same key); the file is renamed so it is imported once."""
        if not path.exists():
            return
        import json

        data = json.loads(path.read_text() or "{}")
        for scope, s in data.items():
            self.store.insert_scope(scope, s.get("creator", "admin"))
            for key, v in s.get("keys", {}).items():
                self.store.put_secret(scope, key, v["value"], int(v["last_updated_timestamp"]))
        path.replace(path.with_suffix(".json.imported"))

    # -- scopes ------------------------------------------------------------------------
    def create_scope(self, p: Principal, scope: str) -> None:
        if not isinstance(scope, str) or not SCOPE_RE.match(scope):
            raise invalid("scope: must be 1-128 letters, digits, '-', '_', '.' or '@'")
        if not self.store.insert_scope(scope, p.name):
            raise ApiError("RESOURCE_ALREADY_EXISTS", f"Scope {scope} already exists!", 400)

    def list_scopes(self) -> list[dict[str, str]]:
        return [{"name": s, "backend_type": "DATABRICKS"} for s in sorted(self.store.secret_scopes())]

    def delete_scope(self, p: Principal, scope: str) -> None:
        self._manage(p, scope)
        self.store.delete_scope(scope)
        self.reload()

    def reload(self) -> None:
        self._sealed = None

    def _manage(self, p: Principal, scope: str) -> None:
        creator = self.store.secret_scopes().get(scope)
        if creator is None:
            raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Scope {scope} does not exist!", 404)
        if not (p.is_admin or creator == p.name):
            raise ApiError("PERMISSION_DENIED",
                           f"User {p.name} does not have MANAGE permission on scope {scope}.", 403)

    # -- secrets -----------------------------------------------------------------------
    def put(self, p: Principal, scope: str, key: str, value: str) -> None:
        if not isinstance(key, str) or not KEY_RE.match(key):
            raise invalid("key: must be 1-128 letters, digits, '-', '_' or '.'")
        if len(value.encode()) > MAX_VALUE_BYTES:
            raise invalid("string_value: a secret value is at most 128 KB")
        self._manage(p, scope)
        self.store.put_secret(scope, key, self.seal(value), int(time.time() * 1000))
        self.reload()

    def list_secrets(self, scope: str) -> list[dict[str, Any]]:
        if scope not in self.store.secret_scopes():
            raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Scope {scope} does not exist!", 404)
        return [{"key": k, "last_updated_timestamp": ts}
                for k, (_, ts) in sorted(self.store.secrets_of(scope).items())]

    def delete(self, p: Principal, scope: str, key: str) -> None:
        self._manage(p, scope)
        if not self.store.delete_secret(scope, key):
            raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Secret {key} does not exist in scope {scope}!", 404)
        self.reload()

    # -- resolution (server side only) -------------------------------------------------
    def get_value(self, scope: str, key: str) -> str:
        if self._sealed is None:
            self._sealed = self.store.all_secrets()
        found = self._sealed.get((scope, key))
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
