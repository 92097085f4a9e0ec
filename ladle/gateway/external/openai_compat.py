"""OpenAI wire format providers: openai (and Azure OpenAI, api key or Entra ID), custom
(an OpenAI-compatible URL with api-key or bearer auth), databricks-model-serving (another
workspace's endpoint), ai21labs (its OpenAI-compatible API). Bodies and chunks pass through;
only credentials, the URL and the model name change."""

from __future__ import annotations

import time
from typing import Any

from ladle.gateway.external.base import OPENAI_ONLY, Ctx, Upstream, not_supported
from ladle.schemas.llm import bad
from ladle.schemas.llm import CHAT, COMPLETIONS, EMBEDDINGS

PATHS = {CHAT: "/chat/completions", COMPLETIONS: "/completions", EMBEDDINGS: "/embeddings"}
_entra_cache: dict[tuple[str, str], tuple[str, float]] = {}


def _body(ctx: Ctx, with_model: bool = True) -> dict[str, Any]:
    body = {k: v for k, v in ctx.data.items() if k not in OPENAI_ONLY}
    body.update(ctx.data.get("extra_params") or {})
    if ctx.stream and ctx.data.get("stream_options"):
        body["stream_options"] = ctx.data["stream_options"]
    if with_model:
        body["model"] = ctx.model
    return body


def openai(ctx: Ctx) -> Upstream:
    cfg = ctx.cfg
    api_type = (cfg.get("openai_api_type") or "openai").lower()
    base = (cfg.get("openai_api_base") or "https://api.openai.com/v1").rstrip("/")
    if api_type in ("azure", "azuread"):
        deployment = ctx.required("openai_deployment_name")
        version = ctx.required("openai_api_version")
        url = f"{base}/openai/deployments/{deployment}{PATHS[ctx.task]}?api-version={version}"
        if cfg.get("microsoft_entra_client_id"):
            return Upstream(url, {}, _body(ctx, with_model=False), auth=lambda: _entra_headers(ctx))
        key = ctx.need("openai_api_key")
        headers = {"api-key": key} if api_type == "azure" else {"Authorization": f"Bearer {key}"}
        return Upstream(url, headers, _body(ctx, with_model=False))
    headers = {"Authorization": f"Bearer {ctx.need('openai_api_key')}"}
    if cfg.get("openai_organization"):
        headers["OpenAI-Organization"] = str(cfg["openai_organization"])
    return Upstream(base + PATHS[ctx.task], headers, _body(ctx))


async def _entra_headers(ctx: Ctx) -> dict[str, str]:
    """Microsoft Entra ID client-credentials token for Azure OpenAI (cached until expiry)."""
    import httpx

    tenant = ctx.required("microsoft_entra_tenant_id")
    client_id = ctx.required("microsoft_entra_client_id")
    hit = _entra_cache.get((tenant, client_id))
    if hit and hit[1] > time.time() + 60:
        return {"Authorization": f"Bearer {hit[0]}"}
    secret = ctx.need("microsoft_entra_client_secret")
    async with httpx.AsyncClient(timeout=30) as c:
        r = await c.post(f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
            "scope": "https://cognitiveservices.azure.com/.default"})
    if r.status_code != 200:
        from ladle.schemas.errors import ApiError

        raise ApiError("PERMISSION_DENIED", f"Microsoft Entra ID refused the client credentials of served "
                       f"entity '{ctx.entity}' (HTTP {r.status_code}).", 403)
    tok = r.json()
    _entra_cache[(tenant, client_id)] = (tok["access_token"], time.time() + int(tok.get("expires_in", 3600)))
    return {"Authorization": f"Bearer {tok['access_token']}"}


def custom(ctx: Ctx) -> Upstream:
    url = ctx.required("custom_provider_url").rstrip("/")
    if not url.endswith(tuple(PATHS.values())):
        url += PATHS[ctx.task]
    headers: dict[str, str] = {}
    api_key = ctx.cfg.get("api_key_auth")
    bearer = ctx.cfg.get("bearer_token_auth")
    if isinstance(api_key, dict):
        headers[str(api_key.get("key") or "api-key")] = _nested(ctx, api_key, "value")
    elif isinstance(bearer, dict):
        headers["Authorization"] = f"Bearer {_nested(ctx, bearer, 'token')}"
    return Upstream(url, headers, _body(ctx))


def _nested(ctx: Ctx, obj: dict[str, Any], name: str) -> str:
    v = ctx.value(obj, name)
    if not v:
        raise bad(f"external_model.custom_provider_config: {name} or {name}_plaintext is required")
    return v


def databricks(ctx: Ctx) -> Upstream:
    host = ctx.required("databricks_workspace_url").rstrip("/")
    token = ctx.need("databricks_api_token")
    return Upstream(f"{host}/serving-endpoints/{ctx.model}/invocations",
                    {"Authorization": f"Bearer {token}"}, _body(ctx, with_model=False))


def ai21labs(ctx: Ctx) -> Upstream:
    if ctx.task != CHAT:
        raise not_supported(ctx)
    key = ctx.need("ai21labs_api_key")
    base = (ctx.cfg.get("ai21labs_api_base") or "https://api.ai21.com/studio/v1").rstrip("/")
    return Upstream(base + PATHS[CHAT], {"Authorization": f"Bearer {key}"}, _body(ctx))
