"""Checks of a resolved bundle beyond its schema: what apps refer to, and (with a server) whether
each serving endpoint an app uses exists or is declared in the bundle."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from ladle.cli.bundles.diagnostics import Diagnostic
from ladle.cli.bundles.planner import APPS, ENDPOINTS
from ladle.cli.bundles.resolve import Bundle

APP_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,28}[a-z0-9])?$")


def check(bundle: Bundle, endpoint_exists: Callable[[str], bool],
          app_source: Callable[[str], Path]) -> list[Diagnostic]:
    problems: list[Diagnostic] = []
    declared = {str(e.get("name")) for e in bundle.resources.get(ENDPOINTS, {}).values()}
    for key, app in bundle.resources.get(APPS, {}).items():
        base = ("resources", APPS, key)
        name = str(app.get("name") or "")
        if not APP_NAME.match(name) or len(name) < 2:
            problems.append(bundle.locs.diag((*base, "name"), f"app name {name!r} must be 2-30 characters of "
                                             "lowercase letters, digits and dashes, starting and ending with a "
                                             "letter or digit"))
        keys = set()
        for i, res in enumerate(app.get("resources") or []):
            keys.add(res.get("name"))
            kinds = [k for k in res if k not in ("name", "description")]
            if kinds != ["serving_endpoint"] and kinds != ["secret"]:
                problems.append(bundle.locs.diag((*base, "resources", i), (
                    f"resource {res.get('name')}: ladle apps take exactly one serving_endpoint or secret "
                    f"(found: {', '.join(kinds) or 'none'})")))
            endpoint = (res.get("serving_endpoint") or {}).get("name")
            if endpoint and endpoint not in declared and not endpoint_exists(str(endpoint)):
                problems.append(bundle.locs.diag((*base, "resources", i, "serving_endpoint", "name"), (
                    f"serving endpoint {endpoint} does not exist: create it first or declare it under "
                    "resources.model_serving_endpoints")))
        for i, env in enumerate((app.get("config") or {}).get("env") or []):
            ref = env.get("value_from") or env.get("valueFrom")
            if ref and ref not in keys:
                problems.append(bundle.locs.diag((*base, "config", "env", i), (
                    f"valueFrom {ref!r} names no resource of app {key} (its resources: "
                    f"{', '.join(sorted(str(k) for k in keys)) or 'none'})")))
        source = app_source(key)
        if not source.is_dir():
            problems.append(bundle.locs.diag((*base, "source_code_path"), f"source folder {source} does not exist"))
        elif not (source / "requirements.txt").is_file():
            problems.append(bundle.locs.diag((*base, "source_code_path"), (
                f"source folder {source} has no requirements.txt (ladle builds the app's environment from it)")))
    return problems
