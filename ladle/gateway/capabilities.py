"""What this server can do for an AI Gateway config, checked when the config is written
(PUT ai-gateway, create) so nothing is stored that would silently not act.

- `safety` guardrails need a classifier. ladle ships none; an installed package can provide
  one under the entry point group `ladle.safety_classifiers`: a callable taking a list of
  texts and returning the unsafe categories found (empty when safe).
- usage tracking and inference tables write Delta tables with the `deltalake` package
  (`pip install 'ladle[gateway]'`).
- an enabled inference table needs `catalog_name` and `schema_name`.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from typing import Callable

from ladle.schemas.errors import invalid
from ladle.schemas.gateway import AiGatewayConfig

Classifier = Callable[[list[str]], list[str]]
ENTRY_POINT_GROUP = "ladle.safety_classifiers"


@lru_cache(maxsize=1)
def safety_classifier() -> Classifier | None:
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            return ep.load()
        except Exception:
            continue
    return None


def tables_available() -> bool:
    return importlib.util.find_spec("deltalake") is not None and importlib.util.find_spec("pyarrow") is not None


def check_supported(cfg: AiGatewayConfig | None, prefix: str = "") -> None:
    """Raise 400 INVALID_PARAMETER_VALUE naming the field this server cannot honour."""
    if cfg is None:
        return
    for side in ("input", "output"):
        params = getattr(cfg.guardrails, side) if cfg.guardrails else None
        if params is not None and params.safety and safety_classifier() is None:
            raise invalid(f"{prefix}guardrails.{side}.safety: cannot be enabled: no safety classifier "
                          f"is installed on this ladle server (entry point group '{ENTRY_POINT_GROUP}')")
    it = cfg.inference_table_config
    if it is not None and it.enabled:
        for name in ("catalog_name", "schema_name"):
            if not getattr(it, name):
                raise invalid(f"{prefix}inference_table_config.{name}: is required when the inference "
                              "table is enabled")
    wanted = [f for f, on in (("usage_tracking_config.enabled", bool(cfg.usage_tracking_config
                                                                      and cfg.usage_tracking_config.enabled)),
                              ("inference_table_config.enabled", bool(it and it.enabled))) if on]
    if wanted and not tables_available():
        raise invalid(f"{prefix}{wanted[0]}: needs the 'deltalake' package on the server "
                      "(pip install 'ladle[gateway]')")
