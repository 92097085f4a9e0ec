"""MLflow Tracing's read calls through the MLflow proxy, under the registry permissions: a
trace is its experiment's, so reading one needs CAN_READ on that experiment and tagging one
CAN_EDIT. What MLflow 3 clients call (`MlflowClient().get_trace`, `search_traces`,
`mlflow.search_traces`), on `/api/2.0/mlflow/`, `/api/3.0/mlflow/` or `/ajax-api/...`:

    GET  traces/get?trace_id=         GET  traces/<trace_id>[/info]
    GET  traces/batchGet?trace_ids=   POST traces/batchGetInfos {trace_ids}
    POST traces/search {locations: [{mlflow_experiment: {experiment_id}}]}
    GET  traces?experiment_ids=       PATCH/DELETE traces/<trace_id>/tags

Any other trace call stays admins-only (control/registry_rules.py). A trace's experiment is
asked of MLflow with ladle's credentials (api/mlflow_authz.py Lookups) and remembered.
"""

from __future__ import annotations

import re
from typing import Any

from ladle.api.bodies import json_object
from ladle.api.mlflow_authz import EXP, Lookups
from ladle.control.registry_acl import RegistryAcl
from ladle.schemas.errors import ApiError, invalid
from ladle.schemas.principal import Principal

_PATH = re.compile(r"^/(?:api|ajax-api)/[23]\.0/mlflow/traces(?:/(.*))?$")
_ID = re.compile(r"^[A-Za-z0-9_:.\-]{1,200}$")
CACHE_SIZE = 20000
READ, EDIT = "CAN_READ", "CAN_EDIT"


def rule(method: str, path: str) -> tuple[str, str, str | None] | None:
    """(what, level, trace id in the path) for a trace call ladle opens to non-admins, else None.
    `what`: `query` (trace_id), `ids` (trace_ids), `path` (the id in the path), `locations`,
    `experiments` (experiment_ids)."""
    m = _PATH.match(path)
    if not m:
        return None
    rest = (m.group(1) or "").rstrip("/")
    if method == "GET" and rest == "get":
        return "query", READ, None
    if (method, rest) in (("GET", "batchGet"), ("POST", "batchGetInfos")):
        return "ids", READ, None
    if method == "POST" and rest == "search":
        return "locations", READ, None
    if method == "GET" and rest == "":
        return "experiments", READ, None
    parts = rest.split("/")
    if method == "GET" and len(parts) in (1, 2) and parts[-1] in (parts[0], "info"):
        return "path", READ, parts[0]
    if method in ("PATCH", "DELETE") and len(parts) == 2 and parts[1] == "tags":
        return "path", EDIT, parts[0]
    return None


def message(method: str, query: Any, body: bytes) -> dict[str, Any]:
    """The call's message: a GET's query (its id lists as lists), else the JSON body."""
    if method == "GET":
        return {k: (query.getlist(k) if k in ("trace_ids", "experiment_ids") else query[k]) for k in query}
    return json_object(body) if body.strip() else {}


class TraceAuthz:
    def __init__(self, acl: RegistryAcl, lookups: Lookups) -> None:
        self.acl, self.lookups = acl, lookups
        self._experiment_of: dict[str, str] = {}

    async def experiment_of(self, trace_id: str) -> str | None:
        if trace_id in self._experiment_of:
            return self._experiment_of[trace_id]
        got = await self.lookups.get(f"/api/3.0/mlflow/traces/{trace_id}", {})
        info = ((got or {}).get("trace") or {}).get("trace_info") or {}
        exp = ((info.get("trace_location") or {}).get("mlflow_experiment") or {}).get("experiment_id")
        if exp is None:
            return None
        if len(self._experiment_of) >= CACHE_SIZE:      # bounded: drop the oldest entry
            self._experiment_of.pop(next(iter(self._experiment_of)))
        self._experiment_of[trace_id] = str(exp)
        return str(exp)

    async def _trace(self, p: Principal, trace_id: Any, level: str) -> None:
        if not isinstance(trace_id, str) or not _ID.match(trace_id):
            raise invalid("Missing or invalid value for parameter 'trace_id'.")
        exp = await self.experiment_of(trace_id)
        if exp is None:
            raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Trace with ID '{trace_id}' not found.")
        self.acl.require(p, EXP, exp, level)

    async def check(self, p: Principal, what: str, level: str, path_id: str | None,
                    msg: dict[str, Any]) -> None:
        """PERMISSION_DENIED unless `p` holds `level` on every experiment the call reads."""
        if what == "query":
            await self._trace(p, msg.get("trace_id"), level)
        elif what == "path":
            await self._trace(p, path_id, level)
        elif what == "ids":
            ids = msg.get("trace_ids")
            ids = [ids] if isinstance(ids, str) else ids
            if not isinstance(ids, list) or not ids:
                raise invalid("Missing value for required parameter 'trace_ids'.")
            for tid in ids:
                await self._trace(p, tid, level)
        elif what == "locations":
            locs = msg.get("locations")
            exps = [((x or {}).get("mlflow_experiment") or {}).get("experiment_id")
                    if isinstance(x, dict) else None for x in (locs if isinstance(locs, list) else [])]
            if not exps or any(not isinstance(e, (str, int)) or isinstance(e, bool) for e in exps):
                raise invalid("locations: name the experiments to search "
                              "([{\"mlflow_experiment\": {\"experiment_id\": ...}}]).")
            for e in exps:
                self.acl.require(p, EXP, str(e), level)
        elif what == "experiments":
            exps = msg.get("experiment_ids")
            exps = [exps] if isinstance(exps, str) else exps
            if not isinstance(exps, list) or not exps:
                raise invalid("Missing value for required parameter 'experiment_ids'.")
            for e in exps:
                self.acl.require(p, EXP, str(e), level)
