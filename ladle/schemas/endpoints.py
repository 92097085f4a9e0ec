"""Wire types for the control plane: the request bodies of the serving-endpoints API (create,
update config, AI Gateway, rate limits, tags, ...), validated.

Output objects are rendered by `ladle.control.views` from stored records, so these are
input shapes. Unknown fields are ignored (as Databricks does) except in the AI gateway
config, where an unknown key is a mistake worth reporting.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ladle.schemas.gateway import AiGatewayConfig, RateLimit
from ladle.schemas.errors import invalid
from ladle.schemas.external import ExternalModel
from ladle.schemas.wire import proto_int

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
MAX_SERVED_ENTITIES = 15
WORKLOAD_SIZES = ("Small", "Medium", "Large")
WORKLOAD_TYPES = (
    "CPU", "CPU_MEDIUM", "CPU_LARGE", "GPU_SMALL", "GPU_MEDIUM", "GPU_LARGE",
    "GPU_XLARGE", "GPU_XLARGE_8", "MULTIGPU_MEDIUM",
)


class _In(BaseModel):
    # Strict: a number is not a string, 0 is not false; integers also as decimal strings (proto_int).
    model_config = ConfigDict(extra="ignore", strict=True)


class EndpointTag(_In):
    key: str
    value: str | None = None


class ServedEntityInput(_In):
    name: str | None = None
    entity_name: str | None = None
    entity_version: str | None = None
    external_model: ExternalModel | None = None
    workload_size: str | None = None
    workload_type: str | None = None
    scale_to_zero_enabled: bool | None = None
    min_provisioned_concurrency: proto_int(ge=0) | None = None  # type: ignore[valid-type]
    max_provisioned_concurrency: proto_int(ge=0) | None = None  # type: ignore[valid-type]
    min_provisioned_throughput: proto_int(ge=0) | None = None  # type: ignore[valid-type]
    max_provisioned_throughput: proto_int(ge=0) | None = None  # type: ignore[valid-type]
    provisioned_model_units: proto_int(ge=0) | None = None  # type: ignore[valid-type]
    burst_scaling_enabled: bool | None = None
    environment_vars: dict[str, str] | None = None
    instance_profile_arn: str | None = None

    @field_validator("entity_version", mode="before")
    @classmethod
    def _version_as_str(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("workload_type")
    @classmethod
    def _workload_type(cls, v: str | None) -> str | None:
        if v is not None and v not in WORKLOAD_TYPES:
            raise ValueError(f"must be one of {', '.join(WORKLOAD_TYPES)}")
        return v

    @field_validator("workload_size")
    @classmethod
    def _workload_size(cls, v: str | None) -> str | None:
        if v is not None and v not in WORKLOAD_SIZES:
            raise ValueError(f"must be one of {', '.join(WORKLOAD_SIZES)}, got '{v}'")
        return v

    @model_validator(mode="after")
    def _exclusive(self) -> "ServedEntityInput":
        if self.external_model is not None:
            clash = [
                f for f in ("entity_name", "entity_version", "workload_size", "workload_type",
                            "scale_to_zero_enabled")
                if getattr(self, f) is not None
            ]
            if clash:
                raise ValueError(f"external_model cannot be set together with {', '.join(clash)}")
        else:
            if not self.entity_name:
                raise ValueError("entity_name or external_model is required")
        if self.workload_size is not None and (
            self.min_provisioned_concurrency is not None or self.max_provisioned_concurrency is not None
        ):
            raise ValueError("workload_size cannot be set together with min/max_provisioned_concurrency")
        return self

    def default_name(self) -> str:
        if self.external_model is not None:
            return self.external_model.name.replace(".", "-").replace(":", "-")
        base = (self.entity_name or "").split(".")[-1]
        return f"{base}-{self.entity_version}" if self.entity_version else base


class ServedModelInput(_In):
    """Legacy `served_models`: converted to a served entity on input."""

    name: str | None = None
    model_name: str = Field(min_length=1)
    model_version: str
    scale_to_zero_enabled: bool = False
    workload_size: str | None = None
    workload_type: str | None = None
    environment_vars: dict[str, str] | None = None
    instance_profile_arn: str | None = None

    @field_validator("model_version", mode="before")
    @classmethod
    def _version_as_str(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @model_validator(mode="after")
    def _converts(self) -> "ServedModelInput":
        # It becomes a served entity later: its rules apply now, as this field's 400.
        try:
            self.as_entity()
        except ValidationError as e:
            raise ValueError("; ".join(
                f"{'.'.join(str(x) for x in err['loc']) or 'served_model'}: "
                f"{err['msg'].removeprefix('Value error, ')}" for err in e.errors()[:3])) from None
        return self

    def as_entity(self) -> ServedEntityInput:
        return ServedEntityInput(
            name=self.name, entity_name=self.model_name, entity_version=self.model_version,
            scale_to_zero_enabled=self.scale_to_zero_enabled, workload_size=self.workload_size,
            workload_type=self.workload_type, environment_vars=self.environment_vars,
            instance_profile_arn=self.instance_profile_arn,
        )


class Route(_In):
    traffic_percentage: proto_int(ge=0, le=100)  # type: ignore[valid-type]
    served_model_name: str | None = None
    served_entity_name: str | None = None

    @property
    def target(self) -> str | None:
        return self.served_entity_name or self.served_model_name


class TrafficConfig(_In):
    routes: list[Route] = Field(default_factory=list)


class AutoCaptureConfigInput(_In):
    catalog_name: str | None = None
    schema_name: str | None = None
    table_name_prefix: str | None = None
    enabled: bool | None = None


class EndpointCoreConfigInput(_In):
    name: str | None = None
    served_entities: list[ServedEntityInput] | None = None
    served_models: list[ServedModelInput] | None = None
    traffic_config: TrafficConfig | None = None
    auto_capture_config: AutoCaptureConfigInput | None = None


class EmailNotifications(_In):
    on_update_failure: list[str] | None = None
    on_update_success: list[str] | None = None


class InferenceTableTelemetry(_In):
    name: str | None = None
    sampling_fraction: float | None = Field(default=None, ge=0, le=1)


class TelemetryConfig(_In):
    enabled_telemetry_features: list[
        Literal[
            "TELEMETRY_FEATURE_INFERENCE_TABLE", "TELEMETRY_FEATURE_LOGS",
            "TELEMETRY_FEATURE_METRICS", "TELEMETRY_FEATURE_TRACES",
        ]
    ] | None = None
    inference_table_config: InferenceTableTelemetry | None = None
    table_names: dict[str, str] | None = None
    telemetry_profile_id: str | None = None


class CreateEndpointRequest(_In):
    name: str
    config: EndpointCoreConfigInput | None = None
    ai_gateway: AiGatewayConfig | None = None
    budget_policy_id: str | None = None
    description: str | None = None
    email_notifications: EmailNotifications | None = None
    rate_limits: list[RateLimit] | None = None
    route_optimized: bool | None = None
    tags: list[EndpointTag] | None = None
    telemetry_config: TelemetryConfig | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(
                "must be 1-63 characters of letters, digits, '-' or '_'"
            )
        return v


class PtServedModel(_In):
    entity_name: str = Field(min_length=1)
    provisioned_model_units: proto_int(ge=0)  # type: ignore[valid-type]
    entity_version: str | None = None
    name: str | None = None
    burst_scaling_enabled: bool | None = None

    @field_validator("entity_version", mode="before")
    @classmethod
    def _version_as_str(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


class PtEndpointCoreConfig(_In):
    served_entities: list[PtServedModel] = Field(default_factory=list)
    traffic_config: TrafficConfig | None = None

    def as_core(self) -> EndpointCoreConfigInput:
        return EndpointCoreConfigInput(
            served_entities=[
                ServedEntityInput(
                    name=e.name, entity_name=e.entity_name, entity_version=e.entity_version,
                    provisioned_model_units=e.provisioned_model_units,
                    burst_scaling_enabled=e.burst_scaling_enabled,
                )
                for e in self.served_entities
            ],
            traffic_config=self.traffic_config,
        )


class CreatePtEndpointRequest(_In):
    name: str
    config: PtEndpointCoreConfig
    ai_gateway: AiGatewayConfig | None = None
    budget_policy_id: str | None = None
    email_notifications: EmailNotifications | None = None
    tags: list[EndpointTag] | None = None

    _name = field_validator("name")(CreateEndpointRequest._name.__func__)


class UpdatePtConfigRequest(_In):
    config: PtEndpointCoreConfig


class PatchTagsRequest(_In):
    add_tags: list[EndpointTag] | None = None
    delete_tags: list[str] | None = None


class PutRateLimitsRequest(_In):
    rate_limits: list[RateLimit] = Field(default_factory=list)


class UpdateNotificationsRequest(_In):
    email_notifications: EmailNotifications | None = None


class PatchTelemetryRequest(_In):
    telemetry_config: TelemetryConfig | None = None


# The fields of an endpoint's config that a create body may also give at the top level, beside
# `name` (the form the Databricks Model Serving skill teaches): read as if inside `config`.
CORE_FIELDS = ("served_entities", "served_models", "traffic_config", "auto_capture_config")
PT_CORE_FIELDS = ("served_entities", "traffic_config")


def lift_config_fields(body: Any, fields: tuple[str, ...] = CORE_FIELDS) -> Any:
    """A create body with config fields at the top level, rewritten to the `config` form.
    A field given in both places is a 400 naming it; anything not a JSON object is left for
    validation to reject."""
    if not isinstance(body, dict):
        return body
    top = [f for f in fields if f in body]
    if not top:
        return body
    config = body.get("config")
    if config is None:
        config = {}
    elif not isinstance(config, dict):
        return body
    for f in top:
        if f in config:
            raise invalid(f"{f}: given both at the top level and as config.{f}; use one form "
                          "(the top-level fields stand for the same fields inside `config`)")
    out = {k: v for k, v in body.items() if k not in top}
    out["config"] = {**config, **{f: body[f] for f in top}}
    return out
