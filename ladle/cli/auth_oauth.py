"""The CLI's side of OAuth against a workspace's `/oidc` endpoints, on authlib's httpx client.

- endpoints: `GET <host>/oidc/.well-known/oauth-authorization-server` (authorize and token URLs);
- `client_credentials` (M2M: a service principal's client id and OAuth secret, HTTP Basic);
- `authorization_code` with PKCE S256 for the public client `databricks-cli` (`auth login`);
- `refresh_token` (the server rotates it: the new one replaces the old in the cache).

`transport` is the seam for tests (an httpx transport); nothing here reads files or the cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import OAuth2Client

from ladle.cli.auth_cache import Token

CLI_CLIENT_ID = "databricks-cli"
U2M_SCOPES = "all-apis offline_access"
M2M_SCOPES = "all-apis"
DISCOVERY_PATH = "/oidc/.well-known/oauth-authorization-server"
TIMEOUT_S = 30.0


class OAuthFailure(Exception):
    """The authorization server refused (its `error: error_description`), or could not be reached."""


@dataclass(frozen=True)
class Endpoints:
    authorization_endpoint: str
    token_endpoint: str


def _http(transport: httpx.BaseTransport | None, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    return {"timeout": timeout, "transport": transport} if transport else {"timeout": timeout}


def discover(host: str, transport: httpx.BaseTransport | None = None, timeout: float = TIMEOUT_S) -> Endpoints:
    url = host.rstrip("/") + DISCOVERY_PATH
    try:
        with httpx.Client(**_http(transport, timeout)) as http:
            response = http.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise OAuthFailure(f"cannot reach {host} ({exc or type(exc).__name__})") from exc
    if response.status_code != 200:
        raise OAuthFailure(f"{url}: HTTP {response.status_code}: databricks OAuth is not available on this host")
    try:
        meta = response.json()
        return Endpoints(str(meta["authorization_endpoint"]), str(meta["token_endpoint"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise OAuthFailure(f"{url}: not an OAuth authorization server metadata document") from exc


def _fetch(client: OAuth2Client, what: str, call: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        with client:
            return dict(call(*args, **kwargs))
    except OAuthError as exc:
        detail = f"{exc.error}: {exc.description}" if exc.description else str(exc.error)
        raise OAuthFailure(f"{what}: {detail}") from exc
    except httpx.HTTPError as exc:
        raise OAuthFailure(f"{what}: {exc or type(exc).__name__}") from exc
    except ValueError as exc:  # a non-JSON answer
        raise OAuthFailure(f"{what}: the token endpoint answered non-JSON content") from exc


def client_credentials(
    host: str, client_id: str, client_secret: str, transport: httpx.BaseTransport | None = None
) -> Token:
    """An M2M access token for a service principal (no refresh token: ask again when it expires)."""
    endpoints = discover(host, transport)
    client = OAuth2Client(client_id, client_secret, token_endpoint_auth_method="client_secret_basic",
                          scope=M2M_SCOPES, **_http(transport))
    answer = _fetch(client, "oauth-m2m", client.fetch_token, endpoints.token_endpoint, grant_type="client_credentials")
    return Token.from_oauth(answer)


def refresh(
    host: str, refresh_token: str, transport: httpx.BaseTransport | None = None, timeout: float = TIMEOUT_S
) -> Token:
    endpoints = discover(host, transport, timeout)
    client = OAuth2Client(CLI_CLIENT_ID, token_endpoint_auth_method="none", **_http(transport, timeout))
    answer = _fetch(client, "refresh", client.refresh_token, endpoints.token_endpoint, refresh_token=refresh_token)
    return Token.from_oauth(answer, previous_refresh=refresh_token)


class AuthorizationCodeFlow:
    """One `auth login`: the authorization URL (PKCE S256, random state) and the code exchange."""

    def __init__(self, host: str, redirect_uri: str, transport: httpx.BaseTransport | None = None) -> None:
        self.host = host
        self.redirect_uri = redirect_uri
        self._transport = transport
        self.endpoints = discover(host, transport)
        self.code_verifier = generate_token(64)
        self._client = OAuth2Client(CLI_CLIENT_ID, token_endpoint_auth_method="none", scope=U2M_SCOPES,
                                    redirect_uri=redirect_uri, code_challenge_method="S256", **_http(transport))
        self.url, self.state = self._client.create_authorization_url(
            self.endpoints.authorization_endpoint, code_verifier=self.code_verifier)

    def exchange(self, code: str) -> Token:
        answer = _fetch(self._client, "authorization code exchange", self._client.fetch_token,
                        self.endpoints.token_endpoint, code=code, code_verifier=self.code_verifier)
        return Token.from_oauth(answer)
