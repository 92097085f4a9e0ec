"""ladle as an OAuth authorization server, where databricks-sdk and the Databricks CLI look
for one: `/.well-known/databricks-config` names `<host>/oidc`, whose
`.well-known/oauth-authorization-server` names the authorize, token and keys endpoints.
Every route here is public (the token endpoint authenticates its clients itself); errors
are in OAuth's shape, `{"error", "error_description"}`."""

from __future__ import annotations

import binascii
from typing import Awaitable, Callable
from urllib.parse import parse_qsl

from authlib.oauth2.rfc6749.util import extract_basic_authorization
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ladle.api import oidc_page
from ladle.control.oauth_grants import Grant, OAuthGrants, TokenRequest, parse_authorize
from ladle.control.oauth_keys import SigningKeys
from ladle.schemas.oauth import OAuthError
from ladle.schemas.principal import Principal

MAX_FORM_BYTES = 64 * 1024
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _oauth_error(e: OAuthError) -> JSONResponse:
    return JSONResponse(e.body(), status_code=e.status, headers=NO_STORE)


def _single(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Parameters given once each (RFC 6749 section 3.1: none may repeat)."""
    out: dict[str, str] = {}
    for k, v in pairs:
        if k in out:
            raise OAuthError("invalid_request", f"{k}: given more than once")
        out[k] = v
    return out


async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body. Parsed with the standard library:
    Starlette's form parser needs python-multipart, a dependency for this one format."""
    raw = await request.body()
    if not raw:
        return {}
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
    if len(raw) > MAX_FORM_BYTES:
        raise OAuthError("invalid_request", f"the body is over {MAX_FORM_BYTES} bytes")
    try:
        return _single(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the body is not a valid form") from None


def routes(keys: SigningKeys, grants: OAuthGrants, dispatch: dict[str, Grant],
           authenticate: Callable[[str], Awaitable[Principal | None]], workspace_id: str) -> list[Route]:
    async def databricks_config(request: Request) -> Response:
        return JSONResponse({"oidc_endpoint": _base(request) + "/oidc", "workspace_id": workspace_id,
                             "host_type": "WORKSPACE_HOST"})

    async def discovery(request: Request) -> Response:
        oidc = _base(request) + "/oidc"
        return JSONResponse({
            "issuer": oidc, "authorization_endpoint": oidc + "/v1/authorize",
            "token_endpoint": oidc + "/v1/token", "jwks_uri": oidc + "/v1/keys",
            "response_types_supported": ["code"],
            "grant_types_supported": sorted(dispatch),
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "scopes_supported": ["all-apis", "offline_access"],
        })

    async def jwks(request: Request) -> Response:
        return JSONResponse(keys.jwks())

    async def token(request: Request) -> Response:
        try:
            form = await _form(request)
            try:
                client_id, client_secret = extract_basic_authorization(request.headers)
            except (UnicodeDecodeError, binascii.Error):
                raise OAuthError("invalid_client", "Authorization: malformed Basic credentials") from None
            client_id = client_id or form.get("client_id")
            client_secret = client_secret or form.get("client_secret")
            grant_type = form.get("grant_type", "")
            grant = dispatch.get(grant_type)
            if grant is None:
                raise OAuthError("unsupported_grant_type", f"grant_type: {grant_type[:64]!r} is not one "
                                 f"of {', '.join(sorted(dispatch))}")
            answer = await grant(TokenRequest(form, client_id, client_secret, _base(request) + "/oidc"))
        except OAuthError as e:
            r = _oauth_error(e)
            if e.status == 401 and request.headers.get("authorization", "")[:6].lower() == "basic ":
                r.headers["WWW-Authenticate"] = 'Basic realm="ladle"'    # RFC 6749 section 5.2
            return r
        return JSONResponse(answer, headers=NO_STORE)

    async def authorize_page(request: Request) -> Response:
        try:
            params = _single(list(request.query_params.multi_items()))
            req = parse_authorize(params)
        except OAuthError as e:
            return oidc_page.refused(e.error, e.description)
        return oidc_page.sign_in(params, req.client_id)

    async def authorize(request: Request) -> Response:
        try:
            form = await _form(request)
            req = parse_authorize(form)
        except OAuthError as e:
            return oidc_page.refused(e.error, e.description)
        secret = form.pop("token", "").strip()
        p = await authenticate(secret) if secret else None
        if p is None or p.endpoints is not None or p.model_scope is not None:
            return oidc_page.sign_in(form, req.client_id, "Invalid access token.", 401)
        location = await grants.store.call(grants.issue_code, req, p.name, p.kind)
        return RedirectResponse(location, status_code=302, headers={"Cache-Control": "no-store"})

    return [
        Route("/.well-known/databricks-config", databricks_config, methods=["GET"]),
        Route("/oidc/.well-known/oauth-authorization-server", discovery, methods=["GET"]),
        Route("/oidc/v1/keys", jwks, methods=["GET"]),
        Route("/oidc/v1/token", token, methods=["POST"]),
        Route("/oidc/v1/authorize", authorize_page, methods=["GET"]),
        Route("/oidc/v1/authorize", authorize, methods=["POST"]),
    ]
