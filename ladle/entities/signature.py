"""What a cached MLflow model's MLmodel file says: the input columns of its signature (for
the per-endpoint OpenAPI document) and its `metadata.task` (`agent/v1/responses` for a
ResponsesAgent, `agent/v1/chat` for a ChatModel). Reads files: async callers run these on a
worker thread."""

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


def model_task(models_dir: Path, name: str, version: str) -> str | None:
    """The model's `metadata.task`; "" when it declares none; None when its files are not
    on this machine (yet)."""
    path = model_dir(models_dir, name, version) / "MLmodel"
    if not path.exists():
        return None
    meta = (yaml.safe_load(path.read_text()) or {}).get("metadata")
    task = meta.get("task") if isinstance(meta, dict) else None
    return task if isinstance(task, str) else ""
