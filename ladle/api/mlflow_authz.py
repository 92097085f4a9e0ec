"""Authorize a call on MLflow's paths for the caller, by the table in control/registry_rules.py.

`Authorizer.check` finds what the call acts on (an experiment, a run's experiment, a logged
model's experiment, a registered model, an artifact path's experiment) and raises
PERMISSION_DENIED unless the caller holds the level the rule needs. A run's, a logged
model's and a trace's experiment are looked up on the MLflow server with ladle's own
credentials and remembered (they never change).

Searches are filtered (`Authorizer.search`): runs and logged models are searched only in the
experiments the caller may read (the request's experiment ids, narrowed); experiments,
registered models and model versions are read page by page from MLflow and filtered, so a page
comes back full whenever more readable results exist (up to MAX_UPSTREAM_PAGES upstream pages
per call: past that the page is short and its `next_page_token` goes on from where it
stopped). A page that ends inside an upstream page gets a token of ladle's own (the upstream
token and an offset into that page).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Awaitable, Callable

import httpx
import orjson
from starlette.datastructures import QueryParams

from ladle.api.bodies import json_object
from ladle.control.registry_acl import RegistryAcl
from ladle.control.registry_rules import NEED_LEVEL, Rule, experiment_of_artifact_path, source_target, stage_level
from ladle.entities.registry import RESENDABLE
from ladle.schemas.errors import ApiError, invalid
from ladle.schemas.principal import Principal
from ladle.support.retry import retrying

EXP, MODEL = "experiments", "registered-models"
LIST_FIELDS = {"run_ids", "experiment_ids", "order_by"}     # repeated fields of GET messages
MAX_UPSTREAM_PAGES = 20
UPSTREAM_PAGE = 100          # results asked of MLflow per page at least, when filtering
TOKEN_PREFIX = "ladle1."
CACHE_SIZE = 20000
# The default page size of each search when the request names none (MLflow's).
SEARCHES = {
    "filter-experiments": ("experiments", 1000),
    "filter-models": ("registered_models", 100),
    "filter-versions": ("model_versions", 10000),
}


def message_of(method: str, query: QueryParams, body: bytes) -> dict[str, Any]:
    """The request message as MLflow's handlers read it: a GET's query string (when it has
    one), else the JSON body."""
    if method == "GET" and query:
        return {k: (query.getlist(k) if k in LIST_FIELDS else query[k]) for k in query}
    return json_object(body) if body.strip() else {}


def _id(msg: dict[str, Any], key: str, alt: str | None = None) -> str:
    v = msg.get(key) or (msg.get(alt) if alt else None)
    if not isinstance(v, (str, int)) or isinstance(v, bool) or v == "":
        raise invalid(f"Missing value for required parameter '{key}'.")
    return str(v)


class Lookups:
    """Which experiment a run or logged model belongs to, and a version's stage, asked of the
    MLflow server with ladle's credentials."""

    def __init__(self, mlflow_url: str, token: str | None) -> None:
        self.auth = {"authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.AsyncClient(base_url=mlflow_url, timeout=httpx.Timeout(60.0, connect=10.0))
        self._experiment_of: dict[str, str] = {}

    async def get(self, path: str, params: dict[str, str], missing_on_5xx: bool = False) -> dict[str, Any] | None:
        """The answer's JSON; None when MLflow says there is no such thing (any 4xx; also a
        5xx with `missing_on_5xx`, for names MLflow's store chokes on)."""
        try:   # a read: sent again when its connection failed under it
            r = await retrying(RESENDABLE, attempts=3, delay=0.1)(self.client.get, path, params=params,
                                                                   headers=self.auth)
        except httpx.HTTPError as e:
            raise ApiError("TEMPORARILY_UNAVAILABLE",
                           f"The MLflow tracking server is not reachable: {e}", 503) from None
        if 400 <= r.status_code < 500 or (missing_on_5xx and r.status_code >= 500):
            return None
        try:
            if r.status_code < 400:
                return r.json()
        except ValueError:
            pass
        raise ApiError("TEMPORARILY_UNAVAILABLE",
                       f"The MLflow tracking server answered {r.status_code} to a look-up", 503)

    async def _experiment(self, key: str, path: str, params: dict[str, str],
                          pick: Callable[[dict[str, Any]], Any]) -> str | None:
        if key in self._experiment_of:
            return self._experiment_of[key]
        got = await self.get(path, params)
        exp = pick(got) if got else None
        if exp is None:
            return None
        if len(self._experiment_of) >= CACHE_SIZE:   # bounded: drop the oldest entry
            self._experiment_of.pop(next(iter(self._experiment_of)))
        self._experiment_of[key] = str(exp)
        return str(exp)

    async def experiment_of_run(self, run_id: str) -> str | None:
        return await self._experiment("run:" + run_id, "/api/2.0/mlflow/runs/get", {"run_id": run_id},
                                      lambda d: d.get("run", {}).get("info", {}).get("experiment_id"))

    async def experiment_of_logged_model(self, model_id: str) -> str | None:
        return await self._experiment("lm:" + model_id, f"/api/2.0/mlflow/logged-models/{model_id}", {},
                                      lambda d: d.get("model", {}).get("info", {}).get("experiment_id"))

    async def exists(self, object_type: str, object_id: str) -> bool:
        if object_type == EXP:
            got = await self.get("/api/2.0/mlflow/experiments/get", {"experiment_id": object_id}, True)
        else:
            got = await self.get("/api/2.0/mlflow/registered-models/get", {"name": object_id}, True)
        return got is not None

    async def registered_model(self, name: str) -> dict[str, Any] | None:
        got = await self.get("/api/2.0/mlflow/registered-models/get", {"name": name}, True)
        return (got or {}).get("registered_model")

    async def aclose(self) -> None:
        await self.client.aclose()

    async def versions(self, filter_string: str) -> list[tuple[str, str]]:
        got = await self.get("/api/2.0/mlflow/model-versions/search",
                              {"filter": filter_string, "max_results": "1000"})
        return [(v["name"], str(v["version"])) for v in (got or {}).get("model_versions", [])]

    async def download_uri(self, name: str, version: str) -> str:
        got = await self.get("/api/2.0/mlflow/model-versions/get-download-uri",
                              {"name": name, "version": version})
        return (got or {}).get("artifact_uri", "")

    async def stage(self, name: str, version: str) -> str | None:
        got = await self.get("/api/2.0/mlflow/model-versions/get", {"name": name, "version": version})
        return (got or {}).get("model_version", {}).get("current_stage")


class Authorizer:
    def __init__(self, acl: RegistryAcl, lookups: Lookups) -> None:
        self.acl = acl
        self.lookups = lookups

    # -- one object ----------------------------------------------------------------------
    async def _experiment(self, p: Principal, exp: str | None, level: str, what: str) -> None:
        if exp is None:
            raise ApiError("RESOURCE_DOES_NOT_EXIST", f"{what} does not exist.")
        self.acl.require(p, EXP, exp, level)

    async def _run(self, p: Principal, run_id: str, level: str) -> None:
        exp = await self.lookups.experiment_of_run(run_id)
        await self._experiment(p, exp, level, f"Run '{run_id}'")

    async def _logged_model(self, p: Principal, model_id: str, level: str) -> None:
        exp = await self.lookups.experiment_of_logged_model(model_id)
        await self._experiment(p, exp, level, f"Logged model '{model_id}'")

    async def _artifact(self, p: Principal, path: str | None, level: str) -> None:
        exp = experiment_of_artifact_path(path or "")
        if exp is None:
            raise ApiError("PERMISSION_DENIED",
                           f"Principal '{p.name}' may not use artifact path '{path or ''}': only "
                           "paths under an experiment (<experiment_id>/...) are open to non-admins.")
        if self.acl.allowed(p, EXP, exp, level):
            return
        if level == "CAN_READ" and await self._in_readable_version(p, path or ""):
            return
        self.acl.require(p, EXP, exp, level)

    async def _in_readable_version(self, p: Principal, path: str) -> bool:
        """Whether `path` holds the files of a model version `p` may read (reading a model
        reads its versions' files, wherever their run or logged model lives)."""
        readable = self.acl.readable(p, MODEL) or set()
        parts = path.split("/")
        if not readable or len(parts) < 2:
            return False
        if len(parts) >= 3 and parts[1] == "models" and re.fullmatch(r"m-[0-9a-f]{32}", parts[2]):
            candidates = await self.lookups.versions(f"source_path LIKE '%{parts[2]}%'")
        elif re.fullmatch(r"[0-9a-f]{32}", parts[1]):
            candidates = await self.lookups.versions(f"run_id = '{parts[1]}'")
        else:
            return False
        for name, version in candidates:
            if name not in readable:
                continue
            # the version's files are where its download URI says (never trust a source's text)
            loc = re.sub(r"^mlflow-artifacts:/*", "", await self.lookups.download_uri(name, version)).rstrip("/")
            if loc and (path == loc or path.startswith(loc + "/")):
                return True
        return False

    async def check(self, p: Principal, rule: Rule, route_part: str | None, msg: dict[str, Any]) -> None:
        """PERMISSION_DENIED (or a 400 for a call that names nothing) unless `p` may make the
        call `rule` describes; admins may make every call."""
        if p.is_admin or rule.target in ("open", "search"):
            return
        if p.model_scope is not None:   # a replica's fetch token: AuthMiddleware let it read its version only
            return
        level = NEED_LEVEL.get(rule.need, "")
        t = rule.target
        if t == "admin":
            raise ApiError("PERMISSION_DENIED", f"Principal '{p.name}' is not an admin: this MLflow "
                           "call is open to admins only.")
        if t == "create":
            if msg.get("artifact_location"):
                raise ApiError("PERMISSION_DENIED", "artifact_location: only admins may choose where "
                               "an experiment's artifacts are stored.")
        elif t == "experiment":
            self.acl.require(p, EXP, _id(msg, rule.key or ""), level)
        elif t == "run":
            await self._run(p, _id(msg, rule.key or "", rule.alt_key), level)
        elif t == "runs":
            ids = msg.get(rule.key or "")
            if not isinstance(ids, list) or not ids:
                raise invalid(f"Missing value for required parameter '{rule.key}'.")
            for run_id in ids:
                await self._run(p, str(run_id), level)
        elif t == "logged_model":
            await self._logged_model(p, route_part or "", level)
        elif t == "artifact":
            await self._artifact(p, route_part if route_part is not None else msg.get("path"), level)
        elif t == "model":
            name = _id(msg, rule.key or "")
            if rule.need == "stage":
                current = await self.lookups.stage(name, _id(msg, "version")) \
                    if self.acl.allowed(p, MODEL, name, "CAN_READ") else None
                level = stage_level(msg.get("stage"), current)
            self.acl.require(p, MODEL, name, level)
        elif t == "version_source":
            self.acl.require(p, MODEL, _id(msg, "name"), "CAN_EDIT")
            await self._source(p, msg)
        else:   # a rule this code does not know: refuse rather than let it through
            raise ApiError("PERMISSION_DENIED", "This MLflow call is open to admins only.")

    async def _source(self, p: Principal, msg: dict[str, Any]) -> None:
        """A new model version's files must be ones the caller may read already."""
        if msg.get("run_id"):
            await self._run(p, str(msg["run_id"]), "CAN_READ")
        if msg.get("model_id"):
            await self._logged_model(p, str(msg["model_id"]), "CAN_READ")
        target = source_target(msg.get("source") if isinstance(msg.get("source"), str) else None)
        if target is None:
            raise ApiError("PERMISSION_DENIED",
                           f"source: '{msg.get('source')}' is not a run's or a logged model's "
                           "artifacts in this registry; only admins may register other sources.")
        kind, ident = target
        if kind == "artifact":
            self.acl.require(p, EXP, ident, "CAN_READ")
        elif kind == "model":
            self.acl.require(p, MODEL, ident, "CAN_READ")
        elif kind == "run":
            await self._run(p, ident, "CAN_READ")
        elif kind == "logged_model":
            await self._logged_model(p, ident, "CAN_READ")
        # kind "none": a prompt version, no files to read

    # -- searches ------------------------------------------------------------------------
    def narrow(self, p: Principal, msg: dict[str, Any]) -> dict[str, Any] | None:
        """A runs or logged-models search narrowed to the experiments `p` may read; None when
        none of those asked for are readable."""
        if p.is_admin:
            return msg
        readable = self.acl.readable(p, EXP) or set()
        asked = msg.get("experiment_ids")
        if not isinstance(asked, list):
            raise invalid("experiment_ids: a list of experiment ids is required")
        keep = [str(e) for e in asked if str(e) in readable]
        return {**msg, "experiment_ids": keep} if keep else None

    async def search(self, p: Principal, after: str, msg: dict[str, Any],
                     fetch: Callable[[dict[str, Any]], Awaitable[httpx.Response]]) -> tuple[int, Any]:
        """Filter an experiments / registered models / model versions search to what `p` may
        read; returns (status, JSON body). Upstream pages are read whole (UPSTREAM_PAGE
        results or the page size asked for, the larger); a page of ours that ends inside one
        gets a token of ladle's naming the upstream page and how far into it to go on."""
        key, default = SEARCHES[after]
        try:
            wanted = int(msg.get("max_results") or default)
        except (TypeError, ValueError):
            raise invalid("max_results: must be an integer") from None
        if wanted <= 0:
            raise invalid("max_results: must be positive")
        keep = self._keeper(p, after)
        token, skip, size = _read_token(msg.get("page_token"), max(wanted, UPSTREAM_PAGE))
        out: list[Any] = []
        for _ in range(MAX_UPSTREAM_PAGES):
            page = {k: v for k, v in msg.items() if k != "page_token"}
            page["max_results"] = size
            if token:
                page["page_token"] = token
            r = await fetch(page)
            if r.status_code >= 400:
                return r.status_code, _json_or_error(r)
            data = r.json()
            items, upstream_next = data.get(key, []), data.get("next_page_token")
            for i in range(skip, len(items)):
                if keep(items[i]):
                    out.append(items[i])
                    if len(out) == wanted:
                        nxt = (_token(token, i + 1, size) if i + 1 < len(items)
                               else _token(upstream_next, 0, size) if upstream_next else None)
                        return 200, _page(key, out, nxt)
            token, skip = upstream_next, 0
            if not token:
                return 200, _page(key, out, None)
        return 200, _page(key, out, _token(token, 0, size))     # cut short: go on from here

    def _keeper(self, p: Principal, after: str) -> Callable[[dict[str, Any]], bool]:
        if after == "filter-experiments":
            return lambda x: self.acl.allowed(p, EXP, str(x.get("experiment_id")), "CAN_READ")
        return lambda x: self.acl.allowed(p, MODEL, str(x.get("name")), "CAN_READ")


def _token(upstream: str | None, skip: int, size: int) -> str:
    return TOKEN_PREFIX + base64.urlsafe_b64encode(orjson.dumps({"t": upstream, "s": skip, "n": size})).decode()


def _read_token(raw: Any, size: int) -> tuple[str | None, int, int]:
    """(upstream token, results to skip in that page, upstream page size) of a page token;
    a token that is not ladle's is passed on to MLflow as it is."""
    if not raw:
        return None, 0, size
    if not isinstance(raw, str):
        raise invalid("page_token: must be a string")
    if not raw.startswith(TOKEN_PREFIX):
        return raw, 0, size
    try:
        d = orjson.loads(base64.urlsafe_b64decode(raw[len(TOKEN_PREFIX):]))
        t, skip, n = d["t"], int(d["s"]), int(d["n"])
        if (t is not None and not isinstance(t, str)) or skip < 0 or not 0 < n <= 50000:
            raise ValueError(raw)
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise invalid("page_token: not a page token this server gave") from None
    return t, skip, n


def _page(key: str, items: list[Any], token: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {key: items} if items else {}
    if token:
        body["next_page_token"] = token
    return body


def _json_or_error(r: httpx.Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return {"error_code": "INTERNAL_ERROR", "message": r.text[:500]}
