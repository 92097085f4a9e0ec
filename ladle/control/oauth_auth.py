"""Who a bearer token names: personal access tokens (control/tokens.py) and ladle's OAuth
access tokens (JWTs signed by control/oauth_keys.py), for the gateway's authenticate step.

A JWT is accepted when its signature and expiry check out, the principal it names still
exists, and the credential it came from still exists: the OAuth secret of a service
principal's token (`ladle_secret`), the personal access token a data-plane token was
exchanged from (`ladle_pat`). The first use of a token on this server reads those facts off
the event loop; the answer is cached until the token expires or the state changes (a
principal deleted, a secret or personal token revoked, or any write another server sharing
the database made: `reload` empties the cache), so a known token costs a dict lookup, no
signature check and no database."""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import jwt

from ladle.control.oauth_keys import SigningKeys, UnknownKey, looks_like_jwt
from ladle.control.store import UNAVAILABLE, Store
from ladle.control.tokens import TokenService
from ladle.schemas.errors import ApiError
from ladle.schemas.principal import ModelScope, Principal

KINDS = ("user", "service_principal")
MAX_CACHED = 10_000


def auth_type(claims: dict[str, Any]) -> str:
    if claims.get("ladle_endpoints") is not None:
        return "oauth-dataplane"
    return "oauth-m2m" if claims.get("ladle_secret") else "oauth-u2m"


def replica_principal(claims: dict[str, Any]) -> Principal | None:
    """A Ray Serve replica fetching its model: no user, no groups, one model version; it
    lives as long as its short-lived token (the reconciler owner mints fresh ones)."""
    m = claims["ladle_model"]
    if not isinstance(m, dict) or not all(isinstance(m.get(k), str) and m.get(k) for k in ("name", "version")):
        return None
    artifacts = m.get("artifacts") if isinstance(m.get("artifacts"), str) else ""
    scope = ModelScope(m["name"], m["version"], artifacts)
    return Principal(name=f"replica of {scope.name} version {scope.version}", kind="service_principal",
                     token_id=str(claims.get("jti", "")), groups=frozenset(), model_scope=scope,
                     auth_type="oauth-replica")


def _unavailable() -> ApiError:
    return ApiError("TEMPORARILY_UNAVAILABLE", "ladle's database cannot be reached right now to check "
                    "this token; retry shortly.", 503, headers={"Retry-After": "1"})


class Authenticator:
    def __init__(self, tokens: TokenService, keys: SigningKeys, store: Store,
                 groups_of: Callable[[str], frozenset[str]]) -> None:
        self.tokens = tokens
        self.keys = keys
        self.store = store
        self.groups_of = groups_of
        self._cache: dict[str, tuple[Principal, int]] = {}     # token -> (principal, exp)
        self._generation = 0

    def reload(self) -> None:
        """Forget every resolved token (they are checked again on their next use)."""
        self._generation += 1
        self._cache = {}

    async def authenticate(self, token: str) -> Principal | None:
        if not looks_like_jwt(token):
            return await self.tokens.authenticate(token)
        hit = self._cache.get(token)
        if hit is not None:
            if hit[1] > time.time():
                return self._with_groups(hit[0])
            self._cache.pop(token, None)
            return None
        claims = await self.verify(token)
        if claims is None:     # perhaps a personal token that merely looks like a JWT
            return await self.tokens.authenticate(token)
        generation = self._generation
        try:
            principal = await self.store.call(self.resolve, claims)
        except UNAVAILABLE:
            raise _unavailable() from None
        if principal is not None and generation == self._generation:
            if len(self._cache) >= MAX_CACHED:
                self._cache = {}
            self._cache[token] = (principal, int(claims["exp"]))
        return None if principal is None else self._with_groups(principal)

    def _with_groups(self, p: Principal) -> Principal:
        # read on every use: a group change here reaches a cached token at once
        return dataclasses.replace(p, groups=p.groups | self.groups_of(p.name))

    async def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a valid JWT (signature, expiry), else None. A key made by another
        server since this one loaded its keys is loaded (off the event loop) once."""
        try:
            try:
                return self.keys.verify(token)
            except UnknownKey:
                try:
                    await self.store.call(self.keys.reload)
                except UNAVAILABLE:
                    raise _unavailable() from None
                return self.keys.verify(token)
        except jwt.InvalidTokenError:
            return None

    def resolve(self, claims: dict[str, Any]) -> Principal | None:
        """The principal of verified claims, if it (and its secret) still exist (blocks);
        without its groups (`authenticate` adds them)."""
        if claims.get("ladle_model") is not None:     # a replica's fetch token (control/replica_tokens.py)
            return replica_principal(claims)
        kind, name = claims.get("ladle_kind"), claims.get("sub")
        if kind not in KINDS or not isinstance(name, str):
            return None
        exists, is_admin = self.store.principal_state(kind, name)
        if not exists:
            return None
        secret = claims.get("ladle_secret")     # M2M: the OAuth secret it was issued for
        if secret is not None and not self.store.oauth_secret_exists(str(secret)):
            return None
        pat = claims.get("ladle_pat")           # exchanged from a personal access token
        if pat is not None and not self.store.token_id_exists(str(pat)):
            return None
        endpoints = claims.get("ladle_endpoints")
        return Principal(name=name, kind=kind, is_admin=is_admin,
                         groups=frozenset({"users"} | ({"admins"} if is_admin else set())),
                         token_id=str(claims.get("jti", "")),
                         endpoints=None if endpoints is None else frozenset(map(str, endpoints)),
                         auth_type=auth_type(claims))
