"""Route-optimized endpoints: what their GET answers for the data plane, and the
`authorization_details` a client sends back to exchange its token for one scoped to them.

An endpoint created with `route_optimized: true` (fixed at creation) answers `endpoint_url`
and `data_plane_info.query_info = {endpoint_url, authorization_details}`. The
databricks-sdk's `serving_endpoints_data_plane.query` posts `authorization_details`
verbatim to `/oidc/v1/token` (the jwt-bearer grant, control/oauth_exchange.py) and calls
`endpoint_url` with the token it gets. ladle's data plane is this same server, so the URL is
the server's own base URL plus the endpoint's invocations path.

`authorization_details` is Databricks' shape (RFC 9396 authorization details): a JSON list of
`{"type": "workspace_permission", "object_type": "serving-endpoints", "object_path":
"/serving-endpoints/<endpoint id>", "actions": ["query_inference_endpoint"]}`.
"""

from __future__ import annotations

from typing import Any

import orjson

DETAIL_TYPE = "workspace_permission"
OBJECT_TYPE = "serving-endpoints"
QUERY_ACTION = "query_inference_endpoint"
OBJECT_PREFIX = "/serving-endpoints/"


def invocations_url(base_url: str, name: str) -> str:
    return f"{base_url.rstrip('/')}/serving-endpoints/{name}/invocations"


def authorization_details(endpoint_id: str) -> str:
    return orjson.dumps([{"type": DETAIL_TYPE, "object_type": OBJECT_TYPE,
                          "object_path": OBJECT_PREFIX + endpoint_id,
                          "actions": [QUERY_ACTION]}]).decode()


def with_data_plane(endpoint: dict[str, Any], base_url: str) -> dict[str, Any]:
    """Add `endpoint_url` and `data_plane_info` to a rendered endpoint that is route-optimized."""
    if endpoint.get("route_optimized"):
        url = invocations_url(base_url, endpoint["name"])
        endpoint["endpoint_url"] = url
        endpoint["data_plane_info"] = {"query_info": {
            "endpoint_url": url, "authorization_details": authorization_details(endpoint["id"])}}
    return endpoint


def requested_endpoint_ids(details: str) -> list[str]:
    """The endpoint ids `authorization_details` asks to query. Raises ValueError saying what
    is wrong with it (not JSON, not a list of details, another type, object or action)."""
    try:
        items = orjson.loads(details)
    except orjson.JSONDecodeError:
        raise ValueError("authorization_details is not valid JSON") from None
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not items:
        raise ValueError("authorization_details must be a non-empty JSON list of objects")
    ids: list[str] = []
    for i, d in enumerate(items):
        where = f"authorization_details[{i}]"
        if not isinstance(d, dict):
            raise ValueError(f"{where} must be an object")
        if d.get("type") != DETAIL_TYPE or d.get("object_type") != OBJECT_TYPE:
            raise ValueError(f"{where}: only type '{DETAIL_TYPE}' on object_type '{OBJECT_TYPE}' "
                             "is supported")
        actions = d.get("actions")
        if not isinstance(actions, list) or not actions or any(a != QUERY_ACTION for a in actions):
            raise ValueError(f"{where}.actions must be ['{QUERY_ACTION}']")
        path = d.get("object_path")
        if not isinstance(path, str) or not path.startswith(OBJECT_PREFIX) or "/" in path[len(OBJECT_PREFIX):] \
                or len(path) == len(OBJECT_PREFIX):
            raise ValueError(f"{where}.object_path must be '{OBJECT_PREFIX}<endpoint id>'")
        ids.append(path[len(OBJECT_PREFIX):])
    return ids
