"""The app templates ladle ships (package data under ladle/cli/apps_templates/<name>/) and their
plugin manifests (`appkit.plugins.json`, AppKit's format: plugins, each with required and
optional resources keyed `resourceKey`, the permission the app needs and the env var each
field sets), plus what `apps init` generates from them for databricks.yml, app.yaml and .env
(the rules the Databricks CLI's generator follows).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import click

MANIFEST_FILE = "appkit.plugins.json"
DEFAULT_TEMPLATE = "python"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NEEDS_QUOTES = re.compile(r"""[:#\[\]{}&*!|>'"%@`\n\r\\]|^\s|\s$|^$""")
# DABs' app resource shapes by manifest type: (yaml key, [(manifest field, yaml field)], default permission)
RESOURCE_SPECS: dict[str, tuple[str, list[tuple[str, str]], str]] = {
    "serving_endpoint": ("serving_endpoint", [("name", "name")], "CAN_QUERY"),
    "secret": ("secret", [("scope", "scope"), ("key", "key")], "READ"),
}


def templates_root() -> Traversable:
    return resources.files("ladle.cli").joinpath("apps_templates")


def template_names() -> list[str]:
    return sorted(p.name for p in templates_root().iterdir() if p.joinpath(MANIFEST_FILE).is_file())


def template_dir(name: str | None) -> Traversable:
    name = name or DEFAULT_TEMPLATE
    if name not in template_names():
        raise click.ClickException(f"unknown template {name!r}; available: {', '.join(template_names())}")
    return templates_root().joinpath(name)


def manifest_text(template: str | None) -> str:
    return template_dir(template).joinpath(MANIFEST_FILE).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Resource:
    plugin: str
    type: str
    alias: str
    key: str
    description: str
    permission: str
    fields: dict[str, dict[str, Any]]

    @property
    def var_prefix(self) -> str:
        return self.key.replace("-", "_")


class Manifest:
    def __init__(self, data: dict[str, Any]) -> None:
        self.plugins: dict[str, dict[str, Any]] = data.get("plugins") or {}

    @classmethod
    def load(cls, template: str | None) -> Manifest:
        return cls(json.loads(manifest_text(template)))

    def names(self) -> list[str]:
        return sorted(self.plugins)

    def mandatory(self) -> list[str]:
        return [n for n in self.names() if self.plugins[n].get("requiredByTemplate")]

    def validate_names(self, names: list[str]) -> None:
        for name in names:
            if name not in self.plugins:
                raise click.ClickException(f"unknown plugin: {name!r}; available: [{' '.join(self.names())}]")

    def resources(self, plugin: str, kind: str) -> list[Resource]:
        out = []
        for r in ((self.plugins.get(plugin) or {}).get("resources") or {}).get(kind) or []:
            out.append(Resource(plugin, r["type"], r.get("alias", r["resourceKey"]), r["resourceKey"],
                                r.get("description", ""), r.get("permission", ""), r.get("fields") or {}))
        return out

    def parse_set(self, values: list[str]) -> dict[str, str]:
        """`--set plugin.resourceKey.field=value` pairs, checked against the manifest, as
        {"resourceKey.field": value} (the Databricks CLI's rules and messages)."""
        out: dict[str, str] = {}
        for sv in values:
            key, sep, value = sv.partition("=")
            if not sep or not key:
                raise click.ClickException(f"invalid --set format {sv!r}, expected plugin.resourceKey.field=value")
            parts = key.split(".", 2)
            if len(parts) != 3:
                raise click.ClickException(f"invalid --set key {key!r}, expected plugin.resourceKey.field")
            plugin, rkey, field = parts
            if plugin not in self.plugins:
                raise click.ClickException(
                    f"unknown plugin {plugin!r} in --set {sv!r}; available: [{' '.join(self.names())}]")
            if not any(r.key == rkey and field in r.fields
                       for r in self.resources(plugin, "required") + self.resources(plugin, "optional")):
                raise click.ClickException(f"plugin {plugin!r} has no resource with key {rkey!r} and field {field!r}")
            out[f"{rkey}.{field}"] = value
        return out

    def selected(self, plugins: list[str], values: dict[str, str]) -> list[Resource]:
        """Required resources of the plugins, then optional ones that were given a value."""
        out: list[Resource] = []
        for p in plugins:
            out += self.resources(p, "required")
            out += [r for r in self.resources(p, "optional") if any(k.startswith(r.key + ".") for k in values)]
        return out

    @staticmethod
    def check_required(plugins: list[str], required: list[Resource], values: dict[str, str]) -> None:
        for r in required:
            if r.plugin in plugins and not any(k.startswith(r.key + ".") and v for k, v in values.items()):
                first = sorted(r.fields)[0] if r.fields else "id"
                raise click.ClickException(f"missing required resource {r.alias!r} for selected plugins "
                                           f"(use --set {r.plugin}.{r.key}.{first}=value)")


def quote_yaml(value: str) -> str:
    if _NEEDS_QUOTES.search(value):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def _var_fields(r: Resource) -> list[tuple[str, str]]:
    spec = RESOURCE_SPECS.get(r.type)
    names = [f for f in sorted(r.fields) if not r.fields[f].get("bundleIgnore") and not r.fields[f].get("localOnly")]
    for field, _ in (spec[1] if spec else []):
        if field not in names:
            names.append(field)
    return [(f, f"{r.var_prefix}_{f}") for f in names]


def bundle_variables(res: list[Resource]) -> str:
    lines = []
    for r in res:
        for field, var in _var_fields(r):
            lines.append(f"  {var}:")
            desc = (r.fields.get(field) or {}).get("description") or r.description
            if desc:
                lines.append(f"    description: {quote_yaml(desc)}")
    return "\nvariables:\n" + "\n".join(lines) + "\n" if lines else ""


def bundle_resources(res: list[Resource]) -> str:
    blocks = []
    for r in res:
        spec = RESOURCE_SPECS.get(r.type)
        if spec is None:
            continue
        yaml_key, fields, default_permission = spec
        lines = [f"        - name: {r.key}", f"          {yaml_key}:"]
        lines += [f"            {yf}: ${{var.{r.var_prefix}_{mf}}}" for mf, yf in fields]
        lines.append(f"            permission: {r.permission or default_permission}")
        blocks.append("\n".join(lines))
    if not blocks:
        return ""
    return "\n      # The resources which this app has access to.\n      resources:\n" + "\n".join(blocks) + "\n"


def target_variables(res: list[Resource], values: dict[str, str]) -> str:
    lines = [f"      {var}: {quote_yaml(values[f'{r.key}.{f}'])}"
             for r in res for f, var in _var_fields(r) if values.get(f"{r.key}.{f}")]
    return "\n    variables:\n" + "\n".join(lines) if lines else ""


def app_env(res: list[Resource]) -> str:
    lines = [f"  - name: {spec['env']}\n    valueFrom: {r.key}"
             for r in res for _, spec in sorted(r.fields.items())
             if _ENV_NAME.match(spec.get("env") or "") and not spec.get("localOnly")]
    return "env:\n" + "\n".join(lines) if lines else ""


def dot_env(res: list[Resource], values: dict[str, str]) -> str:
    lines = []
    for r in res:
        for field, spec in sorted(r.fields.items()):
            if _ENV_NAME.match(spec.get("env") or ""):
                value = values.get(f"{r.key}.{field}") or spec.get("value") or ""
                lines.append(f"{spec['env']}={value.replace(chr(10), '').replace(chr(13), '')}")
    return "\n".join(lines)
