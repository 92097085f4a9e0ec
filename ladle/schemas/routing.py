"""The read-only routing view the control plane pushes to the gateway (no store reads on
the request path)."""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EntityRoute:
    name: str
    key: str
    external_model: dict[str, Any] | None = None
    scale_to_zero: bool = False
    model: tuple[str, str] | None = None       # (registered model, version) of a served model


@dataclass(frozen=True)
class EndpointRoute:
    name: str
    id: str
    entities: dict[str, EntityRoute]
    order: tuple[str, ...]                     # served entities in config order (fallbacks)
    cumulative: tuple[int, ...] = ()           # cumulative traffic percentages
    targets: tuple[str, ...] = ()
    ai_gateway: dict[str, Any] = field(default_factory=dict)
    task: str | None = None
    rate_limits: tuple[dict[str, Any], ...] = ()   # the legacy endpoint `rate_limits`
    auto_capture: dict[str, Any] | None = None      # the legacy `config.auto_capture_config`
    telemetry: dict[str, Any] | None = None         # the endpoint's `telemetry_config`
    experiment_id: str | None = None    # MLflow traces go here (a served entity's MLFLOW_EXPERIMENT_ID)

    def pick(self, rnd: random.Random | None = None) -> EntityRoute:
        x = (rnd or random).random() * (self.cumulative[-1] if self.cumulative else 1)
        i = bisect.bisect_right(self.cumulative, x)
        return self.entities[self.targets[min(i, len(self.targets) - 1)]]


def build_route(name: str, endpoint_id: str, config: dict[str, Any], ai_gateway: dict | None,
                task: str | None, rate_limits: list[dict[str, Any]] | None = None,
                telemetry: dict[str, Any] | None = None) -> EndpointRoute:
    ents = {
        e["name"]: EntityRoute(e["name"], e["_key"], e.get("external_model"),
                               bool(e.get("scale_to_zero_enabled")),
                               None if e.get("external_model") or not e.get("entity_name")
                               else (e["entity_name"], str(e.get("entity_version"))))
        for e in config["served_entities"]
    }
    cum, targets, total = [], [], 0
    for r in config["traffic_config"]["routes"]:
        if r["traffic_percentage"] <= 0:
            continue
        total += r["traffic_percentage"]
        cum.append(total)
        targets.append(r.get("served_entity_name") or r.get("served_model_name"))
    return EndpointRoute(name, endpoint_id, ents, tuple(e["name"] for e in config["served_entities"]),
                         tuple(cum), tuple(targets), ai_gateway or {}, task, tuple(rate_limits or ()),
                         config.get("auto_capture_config"), telemetry or None,
                         next((str(x) for e in config["served_entities"]
                               if (x := (e.get("environment_vars") or {}).get("MLFLOW_EXPERIMENT_ID"))), None))
