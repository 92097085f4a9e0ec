"""Route-optimized endpoints through the real databricks-sdk: a service principal signed in
with OAuth (M2M) queries one with `w.serving_endpoints_data_plane.query`, the SDK exchanging
its token at /oidc/v1/token with its own code; the scoped token it gets is refused on another
endpoint and on the control plane; `route_optimized` is fixed at creation."""

from __future__ import annotations

import secrets
from datetime import timedelta

import httpx
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.data_plane import DataPlaneTokenSource
from databricks.sdk.errors import InvalidParameterValue
from databricks.sdk.service.serving import (
    EndpointCoreConfigInput, ServedEntityInput, ServingEndpointAccessControlRequest,
    ServingEndpointPermissionLevel,
)


@pytest.fixture(scope="module")
def fast(workspace, models):
    """A route-optimized endpoint serving iris v1, made with the SDK."""
    name = "iris-fast-" + secrets.token_hex(3)
    ep = workspace.serving_endpoints.create_and_wait(
        name, route_optimized=True, timeout=timedelta(minutes=2),
        config=EndpointCoreConfigInput(name=name, served_entities=[ServedEntityInput(
            entity_name="main.default.iris", entity_version="1", workload_size="Small",
            scale_to_zero_enabled=False)]))
    yield ep
    workspace.serving_endpoints.delete(name)


@pytest.fixture(scope="module")
def sp(server, workspace, fast):
    """A service principal with an OAuth secret and CAN_QUERY on `fast`, signed in with M2M."""
    who = workspace.service_principals.create(display_name="data-plane-" + secrets.token_hex(3))
    secret = workspace.service_principal_secrets_proxy.create(service_principal_id=who.id)
    workspace.serving_endpoints.update_permissions(fast.id, access_control_list=[
        ServingEndpointAccessControlRequest(service_principal_name=who.application_id,
                                            permission_level=ServingEndpointPermissionLevel.CAN_QUERY)])
    yield WorkspaceClient(host=server.url, client_id=who.application_id, client_secret=secret.secret)
    workspace.service_principals.delete(who.id)


def test_the_sdk_queries_a_route_optimized_endpoint_through_its_data_plane(server, fast, sp, sample,
                                                                           v1_model, iris_endpoint):
    info = fast.data_plane_info.query_info
    assert fast.route_optimized is True
    assert fast.endpoint_url == info.endpoint_url == f"{server.url}/serving-endpoints/{fast.name}/invocations"
    r = sp.serving_endpoints_data_plane.query(fast.name, dataframe_records=sample.to_dict(orient="records"))
    assert r.predictions == v1_model.predict(sample).tolist()

    # the token the SDK got for it, fetched as the SDK fetches it (its own token source)
    scoped = DataPlaneTokenSource(server.url, sp.config.oauth_token).token(
        info.endpoint_url, info.authorization_details).access_token
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {scoped}"}) as h:
        ok = h.post(f"/serving-endpoints/{fast.name}/invocations",
                    json={"dataframe_records": sample.to_dict(orient="records")})
        assert ok.status_code == 200, ok.text
        for method, path in (("POST", f"/serving-endpoints/{iris_endpoint['name']}/invocations"),
                             ("GET", f"/api/2.0/serving-endpoints/{fast.name}"),
                             ("GET", "/api/2.0/preview/scim/v2/Me")):
            r = h.request(method, path, json={"dataframe_records": sample.to_dict(orient="records")})
            assert r.status_code == 403, (path, r.text)
            assert r.json()["error_code"] == "PERMISSION_DENIED"
    # the service principal's own (unscoped) token still reaches what it may
    assert sp.serving_endpoints.get(fast.name).permission_level.value == "CAN_QUERY"


def test_route_optimized_cannot_be_flipped(workspace, fast):
    with pytest.raises(InvalidParameterValue, match="route_optimized"):
        workspace.api_client.do("PUT", f"/api/2.0/serving-endpoints/{fast.name}/config", body={
            "route_optimized": False, "served_entities": [{
                "entity_name": "main.default.iris", "entity_version": "1", "workload_size": "Small",
                "scale_to_zero_enabled": False}]})
    again = workspace.serving_endpoints.get(fast.name)
    assert again.route_optimized is True and again.config.served_entities[0].entity_version == "1"
