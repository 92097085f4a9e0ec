"""The OAuth token cache `~/.databricks/token-cache.json`, in the Databricks CLI's file format.

    {"version": 1, "tokens": {"<key>": {"access_token": ..., "token_type": "Bearer",
                                         "refresh_token": ..., "expiry": "2026-12-05T02:03:04.5Z"}}}

Keys are the profile name and the host (`https://host`, no trailing slash): `auth login` writes
both, as the Go CLI does in its plaintext mode, so a lookup by `--host` and one by `--profile`
find the same tokens. `expiry` is Go's time encoding (RFC 3339 with nanoseconds, local offset).
The directory is created 0700, the file 0600, and every write replaces the file atomically.
Entries this module does not understand (other keys of an entry, other hosts) are kept.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping

CACHE_RELATIVE = ".databricks/token-cache.json"
CACHE_SHOWN = "~/.databricks/token-cache.json"
VERSION = 1
# golang.org/x/oauth2's expiryDelta: a token this close to its expiry counts as expired.
EXPIRY_DELTA = timedelta(seconds=10)


class CacheError(Exception):
    """The cache file exists but cannot be read or written."""


@dataclass(frozen=True)
class Token:
    access_token: str = field(repr=False)
    token_type: str = "Bearer"
    refresh_token: str = field(default="", repr=False)
    expiry: datetime | None = None  # aware

    def expired(self, now: datetime | None = None) -> bool:
        if self.expiry is None:
            return False
        now = now or datetime.now(timezone.utc)
        return self.expiry - EXPIRY_DELTA <= now

    def to_json(self, *, with_refresh: bool = True) -> dict[str, Any]:
        """The Go `oauth2.Token` JSON (empty fields omitted like `omitempty`)."""
        out: dict[str, Any] = {"access_token": self.access_token, "token_type": self.token_type}
        if with_refresh and self.refresh_token:
            out["refresh_token"] = self.refresh_token
        if self.expiry is not None:
            out["expiry"] = go_time(self.expiry)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Token":
        expiry = data.get("expiry")
        return cls(
            access_token=str(data.get("access_token") or ""),
            token_type=str(data.get("token_type") or "Bearer"),
            refresh_token=str(data.get("refresh_token") or ""),
            expiry=parse_go_time(expiry) if expiry else None,
        )

    @classmethod
    def from_oauth(cls, answer: Mapping[str, Any], previous_refresh: str = "") -> "Token":
        """A token endpoint's answer (`expires_in` seconds, or authlib's absolute `expires_at`)."""
        expiry = None
        if answer.get("expires_at"):
            expiry = datetime.fromtimestamp(float(answer["expires_at"]), timezone.utc)
        elif answer.get("expires_in"):
            expiry = datetime.now(timezone.utc) + timedelta(seconds=float(answer["expires_in"]))
        return cls(
            access_token=str(answer["access_token"]),
            token_type=str(answer.get("token_type") or "Bearer").capitalize(),
            refresh_token=str(answer.get("refresh_token") or previous_refresh),
            expiry=expiry,
        )


def go_time(value: datetime) -> str:
    """Go's `time.Time` JSON: RFC 3339, fraction without trailing zeros, `Z` for UTC, local offset."""
    local = value.astimezone()
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if local.microsecond:
        text += "." + f"{local.microsecond:06d}".rstrip("0")
    offset = local.utcoffset() or timedelta(0)
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def parse_go_time(text: str) -> datetime:
    """Parse Go's RFC 3339 (nanosecond fractions are cut to microseconds)."""
    value = datetime.fromisoformat(_FRACTION.sub(r"\1", str(text).strip(), count=1))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def cache_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    home = env.get("HOME") or os.path.expanduser("~")
    return Path(home) / CACHE_RELATIVE


class TokenCache:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_path()

    def _load(self) -> dict[str, Any]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"version": VERSION, "tokens": {}}
        except OSError as exc:
            raise CacheError(f"read {self.path}: {exc.strerror or exc}") from exc
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise CacheError(f"parse {self.path}: {exc}") from exc
        if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("tokens", {}), dict):
            found = data.get("version") if isinstance(data, dict) else data
            raise CacheError(f"{self.path}: needs version {VERSION}, found {found!r}")
        data.setdefault("tokens", {})
        return data

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".token-cache.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:  # mkstemp creates it 0600
                json.dump(data, fh, indent=2)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def lookup(self, *keys: str) -> tuple[str, Token] | None:
        """The first of `keys` that has an entry, and its token."""
        tokens = self._load()["tokens"]
        for key in keys:
            entry = tokens.get(key) if key else None
            if isinstance(entry, dict) and entry.get("access_token"):
                return key, Token.from_json(entry)
        return None

    def put(self, token: Token, *keys: str) -> None:
        data = self._load()
        for key in keys:
            if key:
                entry = data["tokens"].get(key)
                merged = dict(entry) if isinstance(entry, dict) else {}
                merged.pop("refresh_token", None)
                merged.update(token.to_json())
                data["tokens"][key] = merged
        self._write(data)

    def delete(self, *keys: str) -> list[str]:
        """Drop the entries; the keys that were there."""
        data = self._load()
        gone = [k for k in keys if data["tokens"].pop(k, None) is not None]
        if gone:
            self._write(data)
        return gone
