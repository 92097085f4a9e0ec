"""What a bundle deployed, kept in `.databricks/bundle/<target>/resources.json` in the bundle folder.

Each resource the bundle created is recorded as soon as the server accepts it (its name, id and
the spec last applied: None while a change is in flight), so `destroy` removes exactly those and
a failed deploy is finished by the next one.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FILENAME = "resources.json"
VERSION = 1


@dataclass
class Entry:
    name: str
    id: str | None = None
    spec: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class State:
    path: Path
    bundle: str
    target: str
    resources: dict[str, dict[str, Entry]] = field(default_factory=dict)

    def get(self, rtype: str, key: str) -> Entry | None:
        return self.resources.get(rtype, {}).get(key)

    def put(self, rtype: str, key: str, entry: Entry) -> None:
        self.resources.setdefault(rtype, {})[key] = entry
        self.save()

    def drop(self, rtype: str, key: str) -> None:
        self.resources.get(rtype, {}).pop(key, None)
        self.save()

    def empty(self) -> bool:
        return not any(self.resources.values())

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {"version": VERSION, "bundle": self.bundle, "target": self.target, "resources": {
            rtype: {key: {"name": e.name, "id": e.id, "spec": e.spec, **({"extra": e.extra} if e.extra else {})}
                    for key, e in entries.items()}
            for rtype, entries in self.resources.items() if entries}}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".resources-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(body, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, self.path)


def load_state(state_dir: Path, bundle: str, target: str) -> State:
    path = state_dir / FILENAME
    state = State(path, bundle, target)
    if not path.is_file():
        return state
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        import click

        raise click.ClickException(f"cannot read the deployment state {path}: {exc}") from None
    for rtype, entries in (body.get("resources") or {}).items():
        for key, e in (entries or {}).items():
            state.resources.setdefault(rtype, {})[key] = Entry(e["name"], e.get("id"), e.get("spec"),
                                                               e.get("extra") or {})
    return state
