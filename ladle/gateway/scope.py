"""What a token scoped to endpoints may call: the invocation routes of those endpoints only.

A data-plane token (`Principal.endpoints` is not None, from the jwt-bearer exchange) carries
the right to query the endpoints it names and nothing else: not another endpoint, not the
control plane, not MLflow. This is checked once, in AuthMiddleware, for every route.

A replica's fetch token (`Principal.model_scope`, control/replica_tokens.py) reads one
registered model version: its registry entry and download URI, the registered model's own
entry (MLflow's client reads it before any download), and the files under the version's
artifact path on MLflow's artifact proxy, with GETs only. What it may read is decided here
alone (the MLflow proxy's per-object permissions do not apply to it).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs

from ladle.schemas.errors import ApiError
from ladle.schemas.principal import ModelScope, Principal

# /serving-endpoints/{name}/invocations and /serving-endpoints/{name}/served-models/{served}/invocations
_INVOCATION = re.compile(r"^/serving-endpoints/([^/]+)(?:/served-models/[^/]+)?/invocations/?$")


def scoped_endpoint(method: str, path: str) -> str | None:
    """The endpoint an invocation request is for, or None when the request is not one."""
    if method != "POST":
        return None
    m = _INVOCATION.match(path)
    return m.group(1) if m else None


_VERSION_READS = ("/api/2.0/mlflow/model-versions/get", "/api/2.0/mlflow/model-versions/get-download-uri")
_MODEL_READ = "/api/2.0/mlflow/registered-models/get"
_ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


def check_scope(p: Principal, method: str, path: str, query: bytes = b"") -> None:
    """Raise PERMISSION_DENIED when a scoped principal calls anything but its endpoints'
    invocations, or a replica's token anything but reading its model version."""
    if p.model_scope is not None:
        if not model_read_allowed(p.model_scope, method, path, query):
            raise ApiError("PERMISSION_DENIED", f"This token reads model '{p.model_scope.name}' version "
                           f"{p.model_scope.version} only; it cannot call {method} {path}.")
        return
    if p.endpoints is None:
        return
    name = scoped_endpoint(method, path)
    if name is None:
        raise ApiError("PERMISSION_DENIED", "This token is scoped to querying serving endpoints "
                       f"({', '.join(sorted(p.endpoints))}); it cannot call {method} {path}.")
    if name not in p.endpoints:
        raise ApiError("PERMISSION_DENIED", f"This token is scoped to querying "
                       f"{', '.join(sorted(p.endpoints))}; it cannot query endpoint '{name}'.")


def model_read_allowed(scope: ModelScope, method: str, path: str, query: bytes) -> bool:
    """Whether a GET reads the scope's model version or a file under its artifact path."""
    if method not in ("GET", "HEAD"):
        return False
    try:
        params = parse_qs(query.decode("ascii"), keep_blank_values=True, strict_parsing=bool(query))
    except (ValueError, UnicodeDecodeError):
        return False
    path = path.rstrip("/") or "/"
    if path in _VERSION_READS:
        return params == {"name": [scope.name], "version": [scope.version]}
    if path == _MODEL_READ:      # MLflow's client reads the model's entry before a download
        return params == {"name": [scope.name]}
    if path == _ARTIFACTS:       # a listing: ?path=<dir>
        return set(params) == {"path"} and len(params["path"]) == 1 and _under(params["path"][0], scope)
    if path.startswith(_ARTIFACTS + "/"):
        return not params and _under(path[len(_ARTIFACTS) + 1:], scope)
    return False


def _under(artifact_path: str, scope: ModelScope) -> bool:
    parts = artifact_path.strip("/").split("/")
    if not scope.artifacts or any(p in ("", ".", "..") or "\\" in p for p in parts):
        return False
    root = scope.artifacts.strip("/").split("/")
    return parts[:len(root)] == root
