"""What a token scoped to endpoints may call: the invocation routes of those endpoints only.

A data-plane token (`Principal.endpoints` is not None, from the jwt-bearer exchange) carries
the right to query the endpoints it names and nothing else: not another endpoint, not the
control plane, not MLflow. This is checked once, in AuthMiddleware, for every route.
"""

from __future__ import annotations

import re

from ladle.schemas.errors import ApiError
from ladle.schemas.principal import Principal

# /serving-endpoints/{name}/invocations and /serving-endpoints/{name}/served-models/{served}/invocations
_INVOCATION = re.compile(r"^/serving-endpoints/([^/]+)(?:/served-models/[^/]+)?/invocations/?$")


def scoped_endpoint(method: str, path: str) -> str | None:
    """The endpoint an invocation request is for, or None when the request is not one."""
    if method != "POST":
        return None
    m = _INVOCATION.match(path)
    return m.group(1) if m else None


def check_scope(p: Principal, method: str, path: str) -> None:
    """Raise PERMISSION_DENIED when a scoped principal calls anything but its endpoints'
    invocations."""
    if p.endpoints is None:
        return
    name = scoped_endpoint(method, path)
    if name is None:
        raise ApiError("PERMISSION_DENIED", "This token is scoped to querying serving endpoints "
                       f"({', '.join(sorted(p.endpoints))}); it cannot call {method} {path}.")
    if name not in p.endpoints:
        raise ApiError("PERMISSION_DENIED", f"This token is scoped to querying "
                       f"{', '.join(sorted(p.endpoints))}; it cannot query endpoint '{name}'.")
