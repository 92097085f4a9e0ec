"""Unity Catalog's read routes for models, as the Databricks SDK and CLI call them
(`w.registered_models.list/get`, `w.model_versions.list/get/get_by_alias`):

GET /api/2.1/unity-catalog/models?catalog_name=&schema_name=   registered models
GET /api/2.1/unity-catalog/models/{full_name}                   one model (with aliases)
GET /api/2.1/unity-catalog/models/{full_name}/versions          its versions
GET /api/2.1/unity-catalog/models/{full_name}/versions/{version}
GET /api/2.1/unity-catalog/models/{full_name}/aliases/{alias}   the version an alias names

`system.ai` holds ladle's foundation model catalog: the models whose weights are on this
server, each with version 1, readable by every user. Every other three-part name is a model of
the MLflow registry behind ladle (its names are `catalog.schema.model`), shown only to those
holding CAN_READ on it (the registry permissions); an admin sees all.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ladle.api.bodies import principal, validate
from ladle.api.mlflow_authz import MODEL, Lookups
from ladle.control.registry_acl import RegistryAcl
from ladle.entities.catalog import ENTITY_VERSION, PREFIX, Catalog, CatalogModel
from ladle.schemas.errors import ApiError, invalid
from ladle.schemas.principal import Principal
from ladle.schemas.unity_catalog import GetModelQuery, ListModelsQuery, ListVersionsQuery

BASE = "/api/2.1/unity-catalog/models"
SYSTEM_AI = PREFIX.rstrip(".")
MAX_UPSTREAM_PAGES = 50


def _parts(full_name: str) -> tuple[str | None, str | None, str]:
    parts = full_name.split(".")
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else (None, None, full_name)


def _foundation_model(m: CatalogModel) -> dict[str, Any]:
    return {"full_name": m.entity_name, "catalog_name": "system", "schema_name": "ai", "name": m.name,
            "comment": f"{m.display_name} ({m.model_id}, {m.task}): {m.description}",
            "owner": "System user", "aliases": []}


def _foundation_version(m: CatalogModel) -> dict[str, Any]:
    return {"model_name": m.name, "catalog_name": "system", "schema_name": "ai",
            "version": int(ENTITY_VERSION), "source": m.model_id, "status": "READY",
            "comment": m.description, "aliases": []}


def _registered_model(rm: dict[str, Any], with_aliases: bool = True) -> dict[str, Any]:
    cat, schema, name = _parts(rm["name"])
    out = {"full_name": rm["name"], "catalog_name": cat, "schema_name": schema, "name": name,
           "comment": rm.get("description"), "owner": rm.get("user_id"),
           "created_at": rm.get("creation_timestamp"), "updated_at": rm.get("last_updated_timestamp")}
    if with_aliases:
        out["aliases"] = [{"alias_name": a.get("alias"), "version_num": int(a.get("version")),
                           "catalog_name": cat, "schema_name": schema, "model_name": name}
                          for a in rm.get("aliases") or []]
    return out


def _model_version(mv: dict[str, Any]) -> dict[str, Any]:
    cat, schema, name = _parts(mv["name"])
    return {"model_name": name, "catalog_name": cat, "schema_name": schema, "version": int(mv["version"]),
            "comment": mv.get("description"), "source": mv.get("source"), "run_id": mv.get("run_id"),
            "status": mv.get("status") or "READY", "created_at": mv.get("creation_timestamp"),
            "created_by": mv.get("user_id"), "updated_at": mv.get("last_updated_timestamp"),
            "aliases": [{"alias_name": a, "version_num": int(mv["version"]), "catalog_name": cat,
                         "schema_name": schema, "model_name": name} for a in mv.get("aliases") or []]}


def _page(key: str, items: list[dict[str, Any]], max_results: int | None, token: str | None) -> dict[str, Any]:
    """One page of a list ladle holds whole; the token is the offset of the next page."""
    if token and not token.isdigit():
        raise invalid(f"page_token: '{token}' is not a page token this server gave")
    start = int(token or 0)
    size = max_results or len(items) or 1
    out: dict[str, Any] = {key: items[start:start + size]}
    if start + size < len(items):
        out["next_page_token"] = str(start + size)
    return out


def _no_model(full_name: str) -> ApiError:
    return ApiError("RESOURCE_DOES_NOT_EXIST", f"Registered model '{full_name}' does not exist. List the "
                    "models of a schema with GET /api/2.1/unity-catalog/models?catalog_name=&schema_name= "
                    "(foundation models: catalog 'system', schema 'ai').")


def routes(catalog: Catalog, acl: RegistryAcl, lookups: Lookups) -> list[Route]:
    mlflow = lookups.get      # MLflow's answer with ladle's credentials; None: no such thing

    async def foundation() -> list[CatalogModel]:
        # The catalog reads its file and looks for weights on disk: off the event loop.
        return await asyncio.to_thread(lambda: [m for m in catalog.all() if m.weights_present])

    async def search_models(p: Principal, prefix: str | None) -> list[dict[str, Any]]:
        params = {"max_results": "1000"}
        if prefix:   # LIKE's '_' matches any character: the exact prefix is checked below
            params["filter"] = f"name LIKE '{prefix}%'"
        out: list[dict[str, Any]] = []
        for _ in range(MAX_UPSTREAM_PAGES):
            got = await mlflow("/api/2.0/mlflow/registered-models/search", params) or {}
            out += [rm for rm in got.get("registered_models", [])
                    if (not prefix or rm["name"].startswith(prefix)) and (not prefix or rm["name"].count(".") == 2)
                    and acl.allowed(p, MODEL, rm["name"], "CAN_READ")]
            if not got.get("next_page_token"):
                break
            params["page_token"] = got["next_page_token"]
        return out

    async def list_models(request: Request) -> Response:
        q = validate(ListModelsQuery, dict(request.query_params))
        if bool(q.catalog_name) != bool(q.schema_name):
            missing = "schema_name" if q.catalog_name else "catalog_name"
            raise invalid(f"{missing}: is required when {'catalog_name' if q.catalog_name else 'schema_name'} "
                          "is given")
        p = principal(request)
        items: list[dict[str, Any]] = []
        system = not q.catalog_name or f"{q.catalog_name}.{q.schema_name}" == SYSTEM_AI
        if system:
            items += [_foundation_model(m) for m in await foundation()]
        if not q.catalog_name or not system:
            prefix = f"{q.catalog_name}.{q.schema_name}." if q.catalog_name else None
            items += [_registered_model(rm, with_aliases=False) for rm in await search_models(p, prefix)]
        return JSONResponse(_page("registered_models", items, q.max_results, q.page_token))

    async def _readable_model(request: Request) -> tuple[str, CatalogModel | dict[str, Any]]:
        full_name = request.path_params["full_name"]
        if "'" in full_name or "\x00" in full_name:
            raise invalid(f"full_name: '{full_name}' is not a model name")
        if full_name.startswith(PREFIX):
            m = next((m for m in await foundation() if m.entity_name == full_name), None)
            if m is None:
                raise _no_model(full_name)
            return full_name, m
        acl.require(principal(request), MODEL, full_name, "CAN_READ")
        got = await mlflow("/api/2.0/mlflow/registered-models/get", {"name": full_name})
        if not got or "registered_model" not in got:
            raise _no_model(full_name)
        return full_name, got["registered_model"]

    async def get_model(request: Request) -> Response:
        q = validate(GetModelQuery, dict(request.query_params))
        _, m = await _readable_model(request)
        out = _foundation_model(m) if isinstance(m, CatalogModel) else _registered_model(m, bool(q.include_aliases))
        if not q.include_aliases:
            out.pop("aliases", None)
        return JSONResponse(out)

    async def _versions(full_name: str, m: CatalogModel | dict[str, Any]) -> list[dict[str, Any]]:
        if isinstance(m, CatalogModel):
            return [_foundation_version(m)]
        got = await mlflow("/api/2.0/mlflow/model-versions/search",
                           {"filter": f"name='{full_name}'", "max_results": "1000"}) or {}
        versions = [_model_version(mv) for mv in got.get("model_versions", []) if mv.get("name") == full_name]
        return sorted(versions, key=lambda v: -v["version"])

    async def list_versions(request: Request) -> Response:
        q = validate(ListVersionsQuery, dict(request.query_params))
        full_name, m = await _readable_model(request)
        return JSONResponse(_page("model_versions", await _versions(full_name, m), q.max_results, q.page_token))

    async def get_version(request: Request) -> Response:
        full_name, m = await _readable_model(request)
        version = request.path_params["version"]
        if not version.isdigit():
            raise invalid(f"version: '{version}' must be a version number")
        for v in await _versions(full_name, m):
            if v["version"] == int(version):
                return JSONResponse(v)
        raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Model version '{full_name}' version {version} does not exist.")

    async def get_by_alias(request: Request) -> Response:
        full_name, m = await _readable_model(request)
        alias = request.path_params["alias"]
        if not isinstance(m, CatalogModel):
            got = await mlflow("/api/2.0/mlflow/registered-models/alias", {"name": full_name, "alias": alias})
            if got and "model_version" in got:
                return JSONResponse(_model_version(got["model_version"]))
        raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Alias '{alias}' of registered model '{full_name}' does not exist.")

    one = BASE + "/{full_name}"
    return [
        Route(BASE, list_models, methods=["GET"]),
        Route(one, get_model, methods=["GET"]),
        Route(one + "/versions", list_versions, methods=["GET"]),
        Route(one + "/versions/{version}", get_version, methods=["GET"]),
        Route(one + "/aliases/{alias}", get_by_alias, methods=["GET"]),
    ]
