"""What the serving-endpoints control plane answers (Databricks' ServingEndpoint objects), as ladle's OpenAPI
document describes it. The objects are rendered by `ladle.control.views`; these models only
describe them (fields a client relies on, typed; more may be present)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ladle.schemas.wire import Out


class EndpointState(Out):
    ready: Literal["READY", "NOT_READY"]
    config_update: Literal["NOT_UPDATING", "IN_PROGRESS", "UPDATE_FAILED", "UPDATE_CANCELED"]


class EndpointTagOut(Out):
    key: str
    value: str | None = None


class ServedEntityState(Out):
    deployment: str | None = None
    deployment_state_message: str | None = None


class ServedEntityOutput(Out):
    name: str
    entity_name: str | None = None
    entity_version: str | None = None
    external_model: dict[str, Any] | None = None
    foundation_model: dict[str, Any] | None = None
    workload_size: str | None = None
    workload_type: str | None = None
    scale_to_zero_enabled: bool | None = None
    environment_vars: dict[str, str] | None = None
    state: ServedEntityState | None = None
    creator: str | None = None
    creation_timestamp: int | None = None


class ServedModelOutput(Out):
    name: str
    model_name: str | None = None
    model_version: str | None = None
    state: ServedEntityState | None = None


class RouteOut(Out):
    traffic_percentage: int
    served_model_name: str | None = None
    served_entity_name: str | None = None


class TrafficConfigOut(Out):
    routes: list[RouteOut] = Field(default_factory=list)


class EndpointCoreConfigOutput(Out):
    config_version: int | None = None
    served_entities: list[ServedEntityOutput] = Field(default_factory=list)
    served_models: list[ServedModelOutput] = Field(default_factory=list)
    traffic_config: TrafficConfigOut | None = None
    auto_capture_config: dict[str, Any] | None = None


class EndpointPendingConfig(EndpointCoreConfigOutput):
    start_time: int | None = None


class ServingEndpoint(Out):
    """A list item: `config` is the summary (entity names and versions)."""

    name: str
    id: str
    creator: str | None = None
    creation_timestamp: int
    last_updated_timestamp: int
    state: EndpointState
    tags: list[EndpointTagOut] = Field(default_factory=list)
    description: str | None = None
    task: str | None = None
    ai_gateway: dict[str, Any] | None = None
    config: dict[str, Any] | None = None


class DataPlaneQueryInfo(Out):
    endpoint_url: str
    authorization_details: str = Field(description="JSON: pass verbatim to /oidc/v1/token (jwt-bearer grant)")


class DataPlaneInfo(Out):
    query_info: DataPlaneQueryInfo


class ServingEndpointDetailed(ServingEndpoint):
    config: EndpointCoreConfigOutput | None = None  # type: ignore[assignment]
    pending_config: EndpointPendingConfig | None = None
    permission_level: Literal["CAN_VIEW", "CAN_QUERY", "CAN_MANAGE"] | None = None
    route_optimized: bool
    endpoint_url: str | None = Field(default=None, description="route-optimized endpoints only")
    data_plane_info: DataPlaneInfo | None = None
    endpoint_type: str | None = None
    email_notifications: dict[str, Any] | None = None
    rate_limits: list[dict[str, Any]] | None = None


class ListEndpointsResponse(Out):
    endpoints: list[ServingEndpoint]


class ServedModelLogs(Out):
    logs: str


class PutAiGatewayResponse(Out):
    """The endpoint's AI Gateway config as stored (Databricks' AiGatewayConfig)."""


class PutRateLimitsResponse(Out):
    rate_limits: list[dict[str, Any]] = Field(default_factory=list)


class TagsResponse(Out):
    tags: list[EndpointTagOut] = Field(default_factory=list)


class NotificationsResponse(Out):
    name: str
    email_notifications: dict[str, Any]


class OpenApiDocument(Out):
    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
