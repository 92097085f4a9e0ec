"""Build steps per entity kind: MLflow models come from the registry (PyfuncPreparer);
foundation models come from ladle's catalog (a model directory on disk, never the
registry). The dispatcher also resolves `{{secrets/scope/key}}` references in a served
entity's environment_vars when its replicas are prepared."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from typing import Callable

from ladle.entities.catalog import Catalog
from ladle.schemas.replicas import GroupSpec, Log, Prepared, Preparer

ResolveEnv = Callable[[dict[str, str]], dict[str, str]]
LLM_EXTRA_HINT = ("install the LLM extra into ladle's environment: "
                  "pip install torch==2.13.0 && pip install 'ladle[llm]'")


class FoundationPreparer:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    async def __call__(self, spec: GroupSpec, log: Log) -> Prepared:
        m = self.catalog.get(spec.model_name)
        if m is None:
            raise RuntimeError(f"'{spec.model_name}' is not a model of ladle's foundation model catalog "
                               "(see `ladle models list`)")
        log(f"Foundation model {m.entity_name}: {m.model_id} ({m.task}), weights from {m.source}")
        if not m.weights_present:
            raise RuntimeError(m.missing_message())
        missing = [mod for mod in ("torch", "transformers") if importlib.util.find_spec(mod) is None]
        if missing:
            raise RuntimeError(f"{' and '.join(missing)} not installed: {LLM_EXTRA_HINT}")
        log(f"Model directory: {m.path}")
        env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
               "LADLE_FOUNDATION_TASK": m.task, "LADLE_FOUNDATION_MODEL": m.model_id}
        return Prepared(python=sys.executable, model_dir=str(m.path), env=env)


class KindPreparer:
    """Pick the build step by GroupSpec.kind; resolve secret references in env vars."""

    def __init__(self, by_kind: dict[str, Preparer], resolve_env: ResolveEnv | None = None) -> None:
        self.by_kind = by_kind
        self.resolve_env = resolve_env

    async def __call__(self, spec: GroupSpec, log: Log) -> Prepared:
        prep = self.by_kind.get(spec.kind)
        if prep is None:
            raise RuntimeError(f"no build step for entity kind '{spec.kind}'")
        out = await prep(spec, log)
        if spec.env_vars and self.resolve_env is not None:
            resolved = self.resolve_env(dict(spec.env_vars))
            n = sum(1 for k, v in spec.env_vars if resolved.get(k) != v)
            if n:
                log(f"Resolved {n} secret reference(s) in environment_vars")
            out = replace(out, env={**out.env, **resolved})
        return out
