"""An endpoint's AI Gateway config compiled once, when the control plane publishes routes,
into what the request path checks (no parsing of config per request)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ladle.gateway.guardrails import Rules, compile_rules
from ladle.gateway.ratelimit import WINDOW_S, LimitPolicy, compile_limits
from ladle.schemas.routing import EndpointRoute
from ladle.telemetry.inference_tables import payload_table
from ladle.telemetry.tables import TableRef


@dataclass
class GatewayPolicy:
    limits: LimitPolicy
    inp: Rules = field(default_factory=Rules)
    out: Rules = field(default_factory=Rules)
    usage: bool = False
    payload: TableRef | None = None
    fallback: bool = False
    llm: bool = False

    @property
    def records(self) -> bool:
        return self.usage or self.payload is not None

    @property
    def parse_request(self) -> bool:
        return self.inp.active or bool(self.out.topics) or self.records

    @property
    def parse_response(self) -> bool:
        return self.out.active or self.usage or self.limits.has_tokens


def compile_policy(route: EndpointRoute, window_s: float = WINDOW_S) -> GatewayPolicy:
    gw = route.ai_gateway or {}
    legacy = route.rate_limits
    capture = route.auto_capture
    if capture is not None and capture.get("enabled") is None:
        capture = {**capture, "enabled": True}       # auto_capture_config is on unless disabled
    guard = gw.get("guardrails") or {}
    return GatewayPolicy(
        limits=compile_limits(route.id, gw, list(legacy) if legacy else None, window_s),
        inp=compile_rules(guard.get("input")),
        out=compile_rules(guard.get("output")),
        usage=bool((gw.get("usage_tracking_config") or {}).get("enabled")),
        payload=(payload_table(gw.get("inference_table_config"), route.name)
                 or payload_table(capture, route.name)),
        fallback=bool((gw.get("fallback_config") or {}).get("enabled")),
        llm=bool(route.task),
    )
