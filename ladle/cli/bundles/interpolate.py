"""`${...}` references and variables, resolved like the Databricks CLI does.

Order: variables get their value (`--var` > `BUNDLE_VAR_<name>` > the target's `variables` > the
`default`); then `${var.x}`, `${bundle.*}` and `${workspace.*}` are replaced everywhere; then the
target's name prefix is applied (`mode: development` prefixes endpoint names with
`dev_<short name>_`; apps get no prefix); then `${resources.<type>.<key>.<field>}` refer to the
resolved resources. A string that is exactly one reference takes the referenced value's type.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ladle.cli.bundles.diagnostics import Diagnostic, Locations, Path_

REF = re.compile(r"\$\{([A-Za-z][\w-]*(?:\.[A-Za-z0-9_][\w-]*(?:\[\d+\])*)*)\}")
_INDEX = re.compile(r"^([\w-]+)((?:\[\d+\])*)$")


class Deferred(Exception):
    """The reference cannot be resolved yet (a later pass answers it)."""


class Missing(Exception):
    """The reference names nothing."""


def normalize(text: str) -> str:
    """Lowercase letters and digits, everything else one underscore, none at the ends."""
    out = "".join(ch if ch.isalnum() else "_" for ch in text.lower())
    return re.sub(r"_+", "_", out).strip("_")


def short_name(user_name: str) -> str:
    return normalize(user_name.split("@", 1)[0])


def normalize_prefix(prefix: str) -> str:
    """`[dev jane] ` -> `dev_jane_` (the Databricks CLI's rule for names without spaces)."""
    prefix = prefix.replace("[", "").strip(" ")
    return normalize(prefix) + ("_" if prefix.endswith("]") else "")


def walk_path(value: Any, parts: list[str]) -> Any:
    for part in parts:
        m = _INDEX.match(part)
        if m is None:
            raise Missing(part)
        key, indexes = m.group(1), re.findall(r"\[(\d+)\]", m.group(2))
        if not isinstance(value, dict) or key not in value:
            raise Missing(part)
        value = value[key]
        for index in indexes:
            if not isinstance(value, list) or int(index) >= len(value):
                raise Missing(part)
            value = value[int(index)]
    return value


def substitute(value: Any, path: Path_, lookup: Callable[[str], Any], locs: Locations,
               problems: list[Diagnostic]) -> Any:
    """Replace the references `lookup` can answer; keep the deferred ones; report missing ones."""
    if isinstance(value, dict):
        return {k: substitute(v, (*path, k), lookup, locs, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, (*path, i), lookup, locs, problems) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = REF.fullmatch(value)
    if whole:
        try:
            return lookup(whole.group(1))
        except Deferred:
            return value
        except Missing:
            problems.append(locs.diag(path, f"reference does not exist: ${{{whole.group(1)}}}"))
            return value

    def one(m: re.Match[str]) -> str:
        try:
            found = lookup(m.group(1))
        except Deferred:
            return m.group(0)
        except Missing:
            problems.append(locs.diag(path, f"reference does not exist: ${{{m.group(1)}}}"))
            return m.group(0)
        if isinstance(found, (dict, list)):
            problems.append(locs.diag(path, f"${{{m.group(1)}}} is not a scalar and cannot be part of a string"))
            return m.group(0)
        return "" if found is None else str(found).lower() if isinstance(found, bool) else str(found)

    return REF.sub(one, value)


def resolve_variables(decls: Any, target_values: Any, overrides: dict[str, str], env: dict[str, str],
                      locs: Locations) -> tuple[dict[str, Any], list[Diagnostic]]:
    """Each declared variable's value, and the problems (undefined, unassigned, lookups)."""
    problems: list[Diagnostic] = []
    decls = decls if isinstance(decls, dict) else {}
    target_values = target_values if isinstance(target_values, dict) else {}
    for name in overrides:
        if name not in decls:
            problems.append(Diagnostic(f"variable {name} has not been defined (--var {name}=...)"))
    values: dict[str, Any] = {}
    for name, decl in decls.items():
        decl = decl if isinstance(decl, dict) else {"default": decl}
        tval = target_values.get(name)
        if isinstance(tval, dict):
            tval = tval.get("default")
        if name in overrides:
            values[name] = overrides[name]
        elif f"BUNDLE_VAR_{name}" in env:
            values[name] = env[f"BUNDLE_VAR_{name}"]
        elif tval is not None:
            values[name] = tval
        elif "default" in decl:
            values[name] = decl["default"]
        elif "lookup" in decl:
            problems.append(locs.diag(("variables", name, "lookup"),
                                      "variable lookups are not supported by ladle: give a default or --var"))
        else:
            problems.append(locs.diag(("variables", name), (
                f"no value assigned to required variable {name}. Assign it in databricks.yml (default or the "
                f"target's variables), with --var=\"{name}=<value>\" or the BUNDLE_VAR_{name} environment variable")))
    return values, problems
