"""The grants of ladle's OAuth token endpoint, and the authorization step before the code
grant: client credentials (service principals with an OAuth secret), authorization code with
PKCE S256 (public client `databricks-cli`, loopback redirects), refresh tokens (rotated).

Access tokens are JWTs signed by control/oauth_keys.py. Codes (5 minutes) and refresh tokens
(30 days) are random values stored as SHA-256 hashes in the database: any server sharing it
redeems them, each exactly once. Every failure is an OAuthError and changes nothing (a
failed redemption has consumed the code, as RFC 6749 wants a code used once)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable
from urllib.parse import urlencode, urlsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oauth2.rfc7636.challenge import CODE_CHALLENGE_PATTERN, CODE_VERIFIER_PATTERN

from ladle.control.oauth_keys import SigningKeys
from ladle.control.oauth_secrets import OAuthSecrets
from ladle.control.store import Store
from ladle.schemas.oauth import OAuthError

ACCESS_TTL_S = 3600
CODE_TTL_S = 300
REFRESH_TTL_S = 30 * 24 * 3600
PUBLIC_CLIENTS = frozenset({"databricks-cli"})
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")


@dataclass(frozen=True)
class TokenRequest:
    """A POST to the token endpoint: its form, the client's credentials (HTTP Basic or form
    fields) and the issuer (the server's base URL as the client reached it)."""
    form: dict[str, str]
    client_id: str | None
    client_secret: str | None
    issuer: str


Grant = Callable[[TokenRequest], Awaitable[dict[str, Any]]]


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _now_ms() -> int:
    return int(time.time() * 1000)


def check_redirect_uri(uri: str) -> None:
    """Only loopback redirects (RFC 8252 section 7.3: any port, http)."""
    try:
        parts = urlsplit(uri)
        _ = parts.port                  # raises ValueError on a malformed port
        ok = parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS and not parts.fragment
    except ValueError:
        ok = False
    if not ok:
        raise OAuthError("invalid_request", "redirect_uri: only http://localhost:<port>/... or "
                         "http://127.0.0.1:<port>/... (a loopback redirect) is allowed")


@dataclass(frozen=True)
class AuthorizeRequest:
    client_id: str
    redirect_uri: str
    scope: str
    state: str
    code_challenge: str


def parse_authorize(params: dict[str, str]) -> AuthorizeRequest:
    """The authorization request, checked before anyone signs in."""
    client_id = params.get("client_id", "")
    if client_id not in PUBLIC_CLIENTS:
        raise OAuthError("unauthorized_client", f"client_id: unknown client {client_id[:64]!r}; "
                         f"the public client is {', '.join(sorted(PUBLIC_CLIENTS))}")
    check_redirect_uri(params.get("redirect_uri", ""))
    if params.get("response_type") != "code":
        raise OAuthError("unsupported_response_type", "response_type: must be 'code'")
    if params.get("code_challenge_method") != "S256":
        raise OAuthError("invalid_request", "code_challenge_method: must be S256 (PKCE is required)")
    challenge = params.get("code_challenge", "")
    if not CODE_CHALLENGE_PATTERN.match(challenge):
        raise OAuthError("invalid_request", "code_challenge: 43-128 characters of [A-Za-z0-9-._~] required")
    return AuthorizeRequest(client_id, params["redirect_uri"], params.get("scope") or "all-apis",
                            params.get("state", ""), challenge)


class OAuthGrants:
    def __init__(self, store: Store, keys: SigningKeys, oauth_secrets: OAuthSecrets) -> None:
        self.store = store
        self.keys = keys
        self.secrets = oauth_secrets

    def grants(self) -> dict[str, Grant]:
        """The grants by `grant_type` (the composition root adds others)."""
        return {"client_credentials": self.client_credentials,
                "authorization_code": self.authorization_code,
                "refresh_token": self.refresh_token}

    # -- the authorization step (after the user signed in) ----------------------------------
    def issue_code(self, req: AuthorizeRequest, name: str, kind: str) -> str:
        """The redirect (with `code` and `state`) for a signed-in principal (blocks)."""
        code = secrets.token_urlsafe(32)
        data = {"sub": name, "kind": kind, "client_id": req.client_id, "redirect_uri": req.redirect_uri,
                "challenge": req.code_challenge, "scope": req.scope}
        now = _now_ms()
        self.store.insert_oauth_grant(_hash(code), "code", data, now + CODE_TTL_S * 1000, now)
        sep = "&" if urlsplit(req.redirect_uri).query else "?"
        return req.redirect_uri + sep + urlencode({"code": code, "state": req.state})

    # -- grants ---------------------------------------------------------------------------
    async def client_credentials(self, req: TokenRequest) -> dict[str, Any]:
        if not req.client_id or not req.client_secret:
            raise OAuthError("invalid_client", "client authentication failed: send the client id "
                             "and secret (HTTP Basic or client_id/client_secret form fields)")
        row = await self.store.call(self.secrets.check, req.client_id, req.client_secret)
        if row is None:
            raise OAuthError("invalid_client", "client authentication failed: unknown client, or a "
                             "wrong, expired or revoked secret")
        scope = req.form.get("scope") or "all-apis"
        if row["scopes"] and not set(scope.split()) <= set(row["scopes"]):
            raise OAuthError("invalid_scope", f"scope: this secret allows only {' '.join(row['scopes'])}")
        claims = {"iss": req.issuer, "sub": req.client_id, "ladle_kind": "service_principal",
                  "client_id": req.client_id, "scope": scope, "ladle_secret": row["id"]}
        return self._answer(claims)

    async def authorization_code(self, req: TokenRequest) -> dict[str, Any]:
        code, verifier = req.form.get("code", ""), req.form.get("code_verifier", "")
        if not code:
            raise OAuthError("invalid_request", "code: required")
        if not CODE_VERIFIER_PATTERN.match(verifier):
            raise OAuthError("invalid_request", "code_verifier: 43-128 characters of [A-Za-z0-9-._~] required")
        data = await self.store.call(self.store.take_oauth_grant, _hash(code), "code", _now_ms())
        if data is None:
            raise OAuthError("invalid_grant", "code: unknown, expired or already used")
        if req.client_id != data["client_id"]:
            raise OAuthError("invalid_grant", "client_id: the code was issued to another client")
        if req.form.get("redirect_uri") != data["redirect_uri"]:
            raise OAuthError("invalid_grant", "redirect_uri: does not match the authorization request")
        if not hmac.compare_digest(create_s256_code_challenge(verifier), data["challenge"]):
            raise OAuthError("invalid_grant", "code_verifier: does not match the code_challenge")
        return await self._user_tokens(req, data)

    async def refresh_token(self, req: TokenRequest) -> dict[str, Any]:
        token = req.form.get("refresh_token", "")
        if not token:
            raise OAuthError("invalid_request", "refresh_token: required")
        data = await self.store.call(self.store.take_oauth_grant, _hash(token), "refresh", _now_ms())
        if data is None:
            raise OAuthError("invalid_grant", "refresh_token: unknown, expired or already used")
        if req.client_id != data["client_id"]:
            raise OAuthError("invalid_grant", "client_id: the refresh token was issued to another client")
        return await self._user_tokens(req, data)

    async def _user_tokens(self, req: TokenRequest, data: dict[str, Any]) -> dict[str, Any]:
        exists, _ = await self.store.call(self.store.principal_state, data["kind"], data["sub"])
        if not exists:
            raise OAuthError("invalid_grant", "the signed-in principal no longer exists")
        claims = {"iss": req.issuer, "sub": data["sub"], "ladle_kind": data["kind"],
                  "client_id": data["client_id"], "scope": data["scope"]}
        out = self._answer(claims)
        if "offline_access" in data["scope"].split():
            refresh = secrets.token_urlsafe(32)
            now = _now_ms()
            await self.store.call(self.store.insert_oauth_grant, _hash(refresh), "refresh", data,
                                  now + REFRESH_TTL_S * 1000, now)
            out["refresh_token"] = refresh
        return out

    def _answer(self, claims: dict[str, Any]) -> dict[str, Any]:
        return {"access_token": self.keys.issue(claims, ACCESS_TTL_S), "token_type": "Bearer",
                "expires_in": ACCESS_TTL_S, "scope": claims["scope"]}
