"""databricks-sdk `WorkspaceClient(...).serving_endpoints` against a real ladle server."""

from __future__ import annotations

import json

import pytest
from databricks.sdk.errors import NotFound, ResourceDoesNotExist
from databricks.sdk.service.serving import (
    AiGatewayRateLimit, AiGatewayRateLimitKey, AiGatewayRateLimitRenewalPeriod,
    AiGatewayUsageTrackingConfig, DataframeSplitInput, EndpointCoreConfigInput, EndpointStateConfigUpdate,
    EndpointStateReady, EndpointTag, ExternalModel, ExternalModelProvider, OpenAiConfig, Route,
    ServedEntityInput, ServingEndpointAccessControlRequest, ServingEndpointPermissionLevel, TrafficConfig,
)

from e2e_support import COLUMNS

EP = "sdk-ep"


@pytest.fixture(scope="module")
def sdk_endpoint(workspace, models, wait_timeout):
    """Created with create_and_wait from SDK objects; deleted at the end of the module."""
    ep = workspace.serving_endpoints.create_and_wait(
        name=EP,
        config=EndpointCoreConfigInput(
            name=EP,
            served_entities=[ServedEntityInput(entity_name=models["iris"], entity_version="1",
                                               workload_size="Small", scale_to_zero_enabled=False)],
        ),
        tags=[EndpointTag(key="team", value="e2e")],
        timeout=wait_timeout,
    )
    yield ep
    try:
        workspace.serving_endpoints.delete(EP)
    except NotFound:
        pass


def test_create_and_wait_returns_ready_endpoint(sdk_endpoint):
    ep = sdk_endpoint
    assert ep.name == EP
    assert ep.state.config_update == EndpointStateConfigUpdate.NOT_UPDATING
    assert ep.state.ready == EndpointStateReady.READY
    assert ep.pending_config is None
    assert ep.config.config_version == 1
    [se] = ep.config.served_entities
    assert se.name == "iris-1" and se.entity_version == "1"
    assert len(ep.id) == 32
    assert [(t.key, t.value) for t in ep.tags] == [("team", "e2e")]


def test_get_and_list(workspace, sdk_endpoint):
    got = workspace.serving_endpoints.get(EP)
    assert got.id == sdk_endpoint.id
    assert got.permission_level.value == "CAN_MANAGE"
    assert got.creation_timestamp > 1_600_000_000_000
    listed = {e.name: e for e in workspace.serving_endpoints.list()}
    assert EP in listed
    assert listed[EP].config.served_entities[0].entity_name == "main.default.iris"


def test_query_dataframe_records_and_split_match_pyfunc(workspace, sdk_endpoint, sample, v1_model, v2_model):
    # the update test may have split the traffic: each answer is that of the version that served it
    expected = {"iris-1": v1_model.predict(sample).tolist(), "iris-2": v2_model.predict(sample).tolist()}
    serving = {e.name for e in workspace.serving_endpoints.get(EP).config.served_entities}
    r = workspace.serving_endpoints.query(EP, dataframe_records=sample.to_dict(orient="records"))
    assert r.served_model_name in serving and r.predictions == expected[r.served_model_name]
    split = sample.to_dict(orient="split")
    r = workspace.serving_endpoints.query(
        EP, dataframe_split=DataframeSplitInput(columns=split["columns"], data=split["data"]))
    assert r.served_model_name in serving and r.predictions == expected[r.served_model_name]


def test_build_logs_logs_metrics_openapi(workspace, sdk_endpoint):
    se = workspace.serving_endpoints
    build = se.build_logs(EP, "iris-1").logs
    assert "main.default.iris" in build
    logs = se.logs(EP, "iris-1").logs
    assert "ready" in logs
    se.query(EP, dataframe_records=[{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4,
                                     "petal_width": 0.2}])
    metrics = se.export_metrics(EP).contents.read().decode()
    assert "request_count_total" in metrics
    assert "request_latency_ms_bucket" in metrics
    doc = json.loads(se.get_open_api(EP).contents.read())
    assert doc["openapi"].startswith("3.1")
    assert f"/serving-endpoints/{EP}/invocations" in doc["paths"]
    op = doc["paths"][f"/serving-endpoints/{EP}/served-models/iris-1/invocations"]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    record = schema["properties"]["dataframe_records"]["items"]
    assert sorted(record["properties"]) == sorted(COLUMNS)
    assert record["properties"]["petal_width"]["type"] == "number"


def test_permissions_by_endpoint_id(workspace, sdk_endpoint):
    se = workspace.serving_endpoints
    eid = sdk_endpoint.id
    levels = {p.permission_level.value for p in se.get_permission_levels(eid).permission_levels}
    assert levels == {"CAN_MANAGE", "CAN_QUERY", "CAN_VIEW"}
    perms = se.set_permissions(eid, access_control_list=[ServingEndpointAccessControlRequest(
        user_name="alice", permission_level=ServingEndpointPermissionLevel.CAN_VIEW)])
    assert perms.object_id == f"/serving-endpoints/{eid}"
    direct = {a.user_name: a.all_permissions[0].permission_level.value
              for a in perms.access_control_list if a.user_name}
    assert direct == {"alice": "CAN_VIEW"}
    perms = se.update_permissions(eid, access_control_list=[ServingEndpointAccessControlRequest(
        user_name="carol", permission_level=ServingEndpointPermissionLevel.CAN_QUERY)])
    direct = {a.user_name: a.all_permissions[0].permission_level.value
              for a in se.get_permissions(eid).access_control_list if a.user_name}
    assert direct == {"alice": "CAN_VIEW", "carol": "CAN_QUERY"}
    with pytest.raises(NotFound):
        se.get_permissions("0" * 32)


def test_put_ai_gateway_and_patch_tags(workspace, sdk_endpoint):
    se = workspace.serving_endpoints
    gw = se.put_ai_gateway(
        EP,
        rate_limits=[AiGatewayRateLimit(calls=100, key=AiGatewayRateLimitKey.USER,
                                        renewal_period=AiGatewayRateLimitRenewalPeriod.MINUTE)],
        usage_tracking_config=AiGatewayUsageTrackingConfig(enabled=True),
    )
    assert gw.rate_limits[0].calls == 100
    assert gw.usage_tracking_config.enabled is True
    assert se.get(EP).ai_gateway.rate_limits[0].calls == 100
    tags = se.patch(EP, add_tags=[EndpointTag(key="stage", value="test")], delete_tags=["team"])
    assert [(t.key, t.value) for t in tags.tags] == [("stage", "test")]
    assert [(t.key, t.value) for t in se.get(EP).tags] == [("stage", "test")]


def test_update_config_and_wait_to_traffic_split(workspace, sdk_endpoint, models, wait_timeout, sample,
                                                  v1_model, v2_model):
    version = workspace.serving_endpoints.get(EP).config.config_version
    ep = workspace.serving_endpoints.update_config_and_wait(
        EP,
        served_entities=[
            ServedEntityInput(entity_name=models["iris"], entity_version="1", workload_size="Small"),
            ServedEntityInput(entity_name=models["iris"], entity_version="2", workload_size="Small"),
        ],
        traffic_config=TrafficConfig(routes=[Route(served_model_name="iris-1", traffic_percentage=50),
                                             Route(served_model_name="iris-2", traffic_percentage=50)]),
        timeout=wait_timeout,
    )
    assert ep.state.config_update == EndpointStateConfigUpdate.NOT_UPDATING
    assert ep.config.config_version == version + 1
    assert {e.name for e in ep.config.served_entities} == {"iris-1", "iris-2"}
    expected = {"iris-1": v1_model.predict(sample).tolist(), "iris-2": v2_model.predict(sample).tolist()}
    seen = set()
    for _ in range(20):
        r = workspace.serving_endpoints.query(EP, dataframe_records=sample.to_dict(orient="records"))
        assert r.predictions == expected[r.served_model_name]
        seen.add(r.served_model_name)
    assert seen == {"iris-1", "iris-2"}


def test_delete(workspace, wait_timeout):
    """On an endpoint of its own (an external model: no replica to start)."""
    name = "sdk-doomed"
    workspace.serving_endpoints.create_and_wait(name=name, config=EndpointCoreConfigInput(
        name=name, served_entities=[ServedEntityInput(name="gpt", external_model=ExternalModel(
            name="gpt-4o-mini", provider=ExternalModelProvider.OPENAI, task="llm/v1/chat",
            openai_config=OpenAiConfig(openai_api_key_plaintext="sk-not-used",
                                       openai_api_base="http://127.0.0.1:9/v1")))]), timeout=wait_timeout)
    assert name in {e.name for e in workspace.serving_endpoints.list()}
    workspace.serving_endpoints.delete(name)
    with pytest.raises(ResourceDoesNotExist):
        workspace.serving_endpoints.get(name)
    assert name not in {e.name for e in workspace.serving_endpoints.list()}
