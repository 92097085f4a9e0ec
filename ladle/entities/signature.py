"""The input columns of a cached MLflow model's signature (its MLmodel file), for the
per-endpoint OpenAPI document. Reads files: async callers run it on a worker thread."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from ladle.entities.prepare import model_dir


def signature_inputs(models_dir: Path, name: str, version: str) -> list[dict[str, Any]] | None:
    path = model_dir(models_dir, name, version) / "MLmodel"
    if not path.exists():
        return None
    doc = yaml.safe_load(path.read_text()) or {}
    sig = (doc.get("signature") or {}).get("inputs")
    return json.loads(sig) if sig else None
