"""Access tokens for the OAuth auth types: `databricks-cli` (U2M, from the token cache, refreshed
when expired) and `oauth-m2m` (client credentials, asked for on each run like the SDKs do).

A missing cache entry fails with the Databricks CLI's wording, `cache: databricks OAuth is not
configured for this host`, which the SDKs look for to fall through to the next auth type.
"""

from __future__ import annotations

import httpx

from ladle.cli.auth_cache import CacheError, Token, TokenCache
from ladle.cli.auth_oauth import OAuthFailure, client_credentials, refresh

NOT_CONFIGURED = "cache: databricks OAuth is not configured for this host"


def login_command(host: str | None, profile: str | None) -> str:
    parts = ["ladle auth login"]
    if host:
        parts.append(f"--host {host}")
    if profile:
        parts.append(f"--profile {profile}")
    return " ".join(parts)


def relogin_hint(host: str | None, profile: str | None) -> str:
    return f"Try logging in again with `{login_command(host, profile)}` before retrying"


def u2m_token(
    host: str,
    profile: str | None = None,
    *,
    force_refresh: bool = False,
    cache: TokenCache | None = None,
    transport: httpx.BaseTransport | None = None,
    timeout: float = 30.0,
) -> Token:
    """The cached token of `profile` (else of `host`), refreshed when expired or when forced.

    A refresh rotates the refresh token: the answer replaces the entry under both keys.
    """
    cache = cache or TokenCache()
    try:
        found = cache.lookup(profile or "", host)
    except CacheError as exc:
        raise OAuthFailure(f"cache: {exc}") from exc
    if found is None:
        raise OAuthFailure(f"{NOT_CONFIGURED}. {relogin_hint(host, profile)}")
    _, token = found
    if not force_refresh and not token.expired():
        return token
    if not token.refresh_token:
        raise OAuthFailure(f"the cached token has expired and there is no refresh token. {relogin_hint(host, profile)}")
    try:
        fresh = refresh(host, token.refresh_token, transport, timeout)
    except OAuthFailure as exc:
        raise OAuthFailure(f"{exc}. {relogin_hint(host, profile)}") from exc
    try:
        cache.put(fresh, *(k for k in (profile, host) if k))
    except (CacheError, OSError) as exc:
        raise OAuthFailure(f"cache: cannot store the refreshed token: {exc}") from exc
    return fresh


def has_cached_token(host: str, profile: str | None, cache: TokenCache | None = None) -> bool:
    try:
        return (cache or TokenCache()).lookup(profile or "", host) is not None
    except CacheError:
        return False


def m2m_token(
    host: str, client_id: str, client_secret: str, transport: httpx.BaseTransport | None = None
) -> Token:
    return client_credentials(host, client_id, client_secret, transport)
