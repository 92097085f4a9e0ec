"""An app's `app.yaml` (or `app.yml`): the command that runs it and its environment.

    command: ["python", "app.py"]          # default when absent (or when there is no app.yaml)
    env:
      - name: SERVING_ENDPOINT
        valueFrom: serving-endpoint         # a resource key: a serving endpoint gives its name,
      - name: GREETING                      # a secret its value
        value: hello

Every mistake is an AppYamlError whose message names the file and the field; a deployment
that meets one fails with that message."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import yaml

DEFAULT_COMMAND = ["python", "app.py"]
NAMES = ("app.yaml", "app.yml")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class AppYamlError(ValueError):
    pass


def find(source: Path) -> Path | None:
    return next((source / n for n in NAMES if (source / n).is_file()), None)


def parse(source: Path, resources: list[dict[str, Any]], reserved: set[str],
          secret_value: Callable[[str, str], str]) -> tuple[list[str], dict[str, str]]:
    """(command, env) of the app in folder `source`, `valueFrom` resolved against `resources`
    (the app's resources as the API holds them). `reserved` are the names ladle sets itself."""
    path = find(source)
    if path is None:
        return list(DEFAULT_COMMAND), {}
    where = path.name
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise AppYamlError(f"{where}: not valid YAML: {e}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise AppYamlError(f"{where}: must be a mapping with `command` and `env`")
    unknown = sorted(set(doc) - {"command", "env"})
    if unknown:
        raise AppYamlError(f"{where}: unknown field {unknown[0]!r} (app.yaml has `command` and `env`)")
    command = doc.get("command", DEFAULT_COMMAND)
    if isinstance(command, str):
        command = command.split()
    if (not isinstance(command, list) or not command
            or not all(isinstance(c, (str, int, float)) and not isinstance(c, bool) for c in command)):
        raise AppYamlError(f"{where}: command: must be a non-empty list of strings")
    by_key = {r["name"]: r for r in resources}
    env: dict[str, str] = {}
    entries = doc.get("env") or []
    if not isinstance(entries, list):
        raise AppYamlError(f"{where}: env: must be a list of {{name, value | valueFrom}}")
    for i, e in enumerate(entries):
        at = f"{where}: env[{i}]"
        if not isinstance(e, dict) or not isinstance(e.get("name"), str):
            raise AppYamlError(f"{at}: each entry needs a `name`")
        name = e["name"]
        if not ENV_NAME.match(name):
            raise AppYamlError(f"{at}.name: {name!r} is not an environment variable name")
        if name in reserved:
            raise AppYamlError(f"{at}.name: {name} is set by ladle for every app")
        extra = sorted(set(e) - {"name", "value", "valueFrom"})
        if extra:
            raise AppYamlError(f"{at}: unknown field {extra[0]!r}")
        if ("value" in e) == ("valueFrom" in e):
            raise AppYamlError(f"{at} ({name}): exactly one of `value` or `valueFrom` is required")
        if "value" in e:
            v = e["value"]
            if isinstance(v, (dict, list)) or v is None:
                raise AppYamlError(f"{at}.value ({name}): must be a string")
            env[name] = str(v).lower() if isinstance(v, bool) else str(v)
            continue
        key = e["valueFrom"]
        res = by_key.get(key) if isinstance(key, str) else None
        if res is None:
            known = ", ".join(sorted(by_key)) or "none"
            raise AppYamlError(f"{at}.valueFrom ({name}): {key!r} is not a resource of this app "
                               f"(its resources: {known}); add it to the app's resources")
        if res.get("serving_endpoint"):
            env[name] = res["serving_endpoint"]["name"]
        else:
            env[name] = secret_value(res["secret"]["scope"], res["secret"]["key"])
    return [str(c) for c in command], env
