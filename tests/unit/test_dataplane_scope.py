"""Route-optimized endpoints' authorization details, and what a scoped token may call."""

from __future__ import annotations

import json

import pytest

from ladle.control.dataplane import authorization_details, requested_endpoint_ids, with_data_plane
from ladle.gateway.scope import check_scope
from ladle.schemas.errors import ApiError
from ladle.schemas.principal import Principal


def test_query_info_round_trips_through_the_parser():
    out = with_data_plane({"name": "churn", "id": "abc123", "route_optimized": True}, "http://h:9/")
    info = out["data_plane_info"]["query_info"]
    assert out["endpoint_url"] == info["endpoint_url"] == "http://h:9/serving-endpoints/churn/invocations"
    assert json.loads(info["authorization_details"]) == [{
        "type": "workspace_permission", "object_type": "serving-endpoints",
        "object_path": "/serving-endpoints/abc123", "actions": ["query_inference_endpoint"]}]
    assert requested_endpoint_ids(info["authorization_details"]) == ["abc123"]


def test_an_endpoint_not_route_optimized_gets_no_data_plane_info():
    out = with_data_plane({"name": "churn", "id": "abc", "route_optimized": False}, "http://h")
    assert "endpoint_url" not in out and "data_plane_info" not in out


@pytest.mark.parametrize("details, says", [
    ("not json", "not valid JSON"),
    ("[]", "non-empty"),
    ('"x"', "non-empty"),
    ("[1]", "must be an object"),
    ('[{"type": "other", "object_type": "serving-endpoints", "object_path": "/serving-endpoints/a",'
     ' "actions": ["query_inference_endpoint"]}]', "only type"),
    ('[{"type": "workspace_permission", "object_type": "serving-endpoints",'
     ' "object_path": "/serving-endpoints/a", "actions": ["manage"]}]', "actions"),
    ('[{"type": "workspace_permission", "object_type": "serving-endpoints",'
     ' "object_path": "/clusters/a", "actions": ["query_inference_endpoint"]}]', "object_path"),
    ('[{"type": "workspace_permission", "object_type": "serving-endpoints",'
     ' "object_path": "/serving-endpoints/", "actions": ["query_inference_endpoint"]}]', "object_path"),
    ('[{"type": "workspace_permission", "object_type": "serving-endpoints",'
     ' "object_path": "/serving-endpoints/a/b", "actions": ["query_inference_endpoint"]}]', "object_path"),
])
def test_bad_authorization_details_say_what_is_wrong(details, says):
    with pytest.raises(ValueError, match=says):
        requested_endpoint_ids(details)


SCOPED = Principal("sp", "service_principal", endpoints=frozenset({"churn"}), auth_type="oauth-dataplane")


@pytest.mark.parametrize("method, path", [
    ("POST", "/serving-endpoints/churn/invocations"),
    ("POST", "/serving-endpoints/churn/served-models/churn-1/invocations"),
])
def test_a_scoped_token_queries_its_endpoint(method, path):
    check_scope(SCOPED, method, path)


@pytest.mark.parametrize("method, path", [
    ("POST", "/serving-endpoints/other/invocations"),
    ("GET", "/serving-endpoints/churn/invocations"),
    ("GET", "/api/2.0/serving-endpoints/churn"),
    ("GET", "/api/2.0/serving-endpoints"),
    ("POST", "/api/2.0/token/create"),
    ("POST", "/serving-endpoints/chat/completions"),
    ("GET", "/api/2.0/preview/scim/v2/Me"),
    ("POST", "/serving-endpoints/churn/invocations/../../x"),
])
def test_a_scoped_token_is_refused_everywhere_else(method, path):
    with pytest.raises(ApiError) as e:
        check_scope(SCOPED, method, path)
    assert e.value.status == 403 and e.value.error_code == "PERMISSION_DENIED"


def test_an_unscoped_principal_is_not_restricted():
    check_scope(Principal("bob"), "GET", "/api/2.0/serving-endpoints")
