"""AI Gateway configuration (Databricks' AiGatewayConfig: guardrails, rate limits, usage
tracking, inference tables, fallbacks). Unknown keys are refused."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from ladle.schemas.wire import proto_int

IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class PiiConfig(_Strict):
    behavior: Literal["NONE", "BLOCK", "MASK"] = "NONE"


class GuardrailParameters(_Strict):
    safety: bool | None = None
    pii: PiiConfig | None = None
    invalid_keywords: list[str] | None = None
    valid_topics: list[str] | None = None


class Guardrails(_Strict):
    input: GuardrailParameters | None = None
    output: GuardrailParameters | None = None


class InferenceTableConfig(_Strict):
    catalog_name: str | None = None
    schema_name: str | None = None
    table_name_prefix: str | None = None
    enabled: bool | None = None

    @field_validator("catalog_name", "schema_name", "table_name_prefix")
    @classmethod
    def _ident(cls, v: str | None) -> str | None:
        if v is not None and not IDENT_RE.match(v):
            raise ValueError(f"'{v}' is not a valid identifier")
        return v


class AiGatewayRateLimit(_Strict):
    renewal_period: Literal["minute"]
    calls: proto_int(ge=0) | None = None  # type: ignore[valid-type]
    tokens: proto_int(ge=0) | None = None  # type: ignore[valid-type]
    key: Literal["endpoint", "user", "user_group", "service_principal"] | None = None
    principal: str | None = None

    @model_validator(mode="after")
    def _check(self) -> "AiGatewayRateLimit":
        if self.calls is None and self.tokens is None:
            raise ValueError("one of calls or tokens is required")
        if self.key in ("user_group", "service_principal") and not self.principal:
            raise ValueError(f"principal is required when key is {self.key}")
        return self


class UsageTrackingConfig(_Strict):
    enabled: bool | None = None


class FallbackConfig(_Strict):
    enabled: bool


class AiGatewayConfig(_Strict):
    guardrails: Guardrails | None = None
    inference_table_config: InferenceTableConfig | None = None
    rate_limits: list[AiGatewayRateLimit] | None = None
    usage_tracking_config: UsageTrackingConfig | None = None
    fallback_config: FallbackConfig | None = None


class RateLimit(BaseModel):
    """Legacy endpoint `rate_limits`."""

    model_config = ConfigDict(extra="forbid", strict=True)
    calls: proto_int(ge=0)  # type: ignore[valid-type]
    renewal_period: Literal["minute"]
    key: Literal["user", "endpoint"] | None = None
