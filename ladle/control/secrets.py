"""The secret store behind the Databricks `/api/2.0/secrets/*` routes: scopes of keys whose
values are encrypted at rest (Fernet; the key lives in LADLE_HOME/secrets.key, mode 0600).

Values are only ever decrypted inside the server, to resolve `{{secrets/<scope>/<key>}}`
references (external model credentials, environment_vars) and the `*_plaintext` fields of
external model configs, which are sealed with the same key before they are stored.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

from ladle.schemas.errors import ApiError, invalid
from ladle.schemas.principal import Principal

REF_RE = re.compile(r"^\{\{\s*secrets/([^/\s]+)/([^/\s}]+)\s*\}\}$")
SCOPE_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,128}$")
KEY_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
SEALED = "ladle-sealed:v1:"
MAX_VALUE_BYTES = 128 * 1024


class SecretStore:
    def __init__(self, home: Path) -> None:
        self.file = Path(home) / "secrets.json"
        self.key_file = Path(home) / "secrets.key"
        self._lock = threading.Lock()
        self._fernet = None

    # -- crypto ------------------------------------------------------------------------
    def _cipher(self):
        if self._fernet is None:
            from cryptography.fernet import Fernet

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

    # -- persistence -------------------------------------------------------------------
    def _read(self) -> dict[str, Any]:
        try:
            return json.loads(self.file.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def _write(self, data: dict[str, Any]) -> None:
        tmp = self.file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        tmp.replace(self.file)

    # -- scopes ------------------------------------------------------------------------
    def create_scope(self, p: Principal, scope: str) -> None:
        if not isinstance(scope, str) or not SCOPE_RE.match(scope):
            raise invalid("scope: must be 1-128 letters, digits, '-', '_', '.' or '@'")
        with self._lock:
            data = self._read()
            if scope in data:
                raise ApiError("RESOURCE_ALREADY_EXISTS", f"Scope {scope} already exists!", 400)
            data[scope] = {"creator": p.name, "keys": {}}
            self._write(data)

    def list_scopes(self) -> list[dict[str, str]]:
        return [{"name": s, "backend_type": "DATABRICKS"} for s in sorted(self._read())]

    def delete_scope(self, p: Principal, scope: str) -> None:
        with self._lock:
            data = self._read()
            self._manage(p, data, scope)
            del data[scope]
            self._write(data)

    def _manage(self, p: Principal, data: dict[str, Any], scope: str) -> dict[str, Any]:
        if scope not in data:
            raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Scope {scope} does not exist!", 404)
        if not (p.is_admin or data[scope].get("creator") == p.name):
            raise ApiError("PERMISSION_DENIED",
                           f"User {p.name} does not have MANAGE permission on scope {scope}.", 403)
        return data[scope]

    # -- secrets -----------------------------------------------------------------------
    def put(self, p: Principal, scope: str, key: str, value: str) -> None:
        if not isinstance(key, str) or not KEY_RE.match(key):
            raise invalid("key: must be 1-128 letters, digits, '-', '_' or '.'")
        if len(value.encode()) > MAX_VALUE_BYTES:
            raise invalid("string_value: a secret value is at most 128 KB")
        with self._lock:
            data = self._read()
            s = self._manage(p, data, scope)
            s["keys"][key] = {"value": self.seal(value), "last_updated_timestamp": int(time.time() * 1000)}
            self._write(data)

    def list_secrets(self, scope: str) -> list[dict[str, Any]]:
        data = self._read()
        if scope not in data:
            raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Scope {scope} does not exist!", 404)
        return [{"key": k, "last_updated_timestamp": v["last_updated_timestamp"]}
                for k, v in sorted(data[scope]["keys"].items())]

    def delete(self, p: Principal, scope: str, key: str) -> None:
        with self._lock:
            data = self._read()
            s = self._manage(p, data, scope)
            if key not in s["keys"]:
                raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Secret {key} does not exist in scope {scope}!", 404)
            del s["keys"][key]
            self._write(data)

    # -- resolution (server side only) -------------------------------------------------
    def get_value(self, scope: str, key: str) -> str:
        s = self._read().get(scope)
        if s is None or key not in s["keys"]:
            raise ApiError("RESOURCE_DOES_NOT_EXIST",
                           f"Secret reference {{{{secrets/{scope}/{key}}}}} does not resolve: "
                           f"no secret '{key}' in scope '{scope}'.", 400)
        return self.unseal(s["keys"][key]["value"])

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
