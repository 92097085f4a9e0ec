"""The JSON bodies of the serving-endpoints commands that take `--json`, for their `-h`:
every field (its path, type, whether it is required, its allowed values) rendered from the
pydantic models the server validates with, and a minimal working example per endpoint type.
tests/unit/test_serving_endpoints_help.py validates each example with the same models, so the
help and the server cannot drift apart."""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

import click

from ladle.cli.options import LadleCommand

if TYPE_CHECKING:
    from pydantic import BaseModel

MAX_DEPTH = 4

_IRIS = {"entity_name": "main.default.iris", "entity_version": "1", "workload_size": "Small",
         "scale_to_zero_enabled": True}
CUSTOM_MODEL = {"served_entities": [_IRIS],
                "traffic_config": {"routes": [{"served_entity_name": "iris-1", "traffic_percentage": 100}]}}
PAY_PER_TOKEN = {"served_entities": [{"entity_name": "system.ai.all_minilm_l6_v2", "entity_version": "1",
                                      "workload_size": "Small", "scale_to_zero_enabled": True}]}
PROVISIONED = {"served_entities": [{"entity_name": "system.ai.all_minilm_l6_v2", "entity_version": "1",
                                    "provisioned_model_units": 1}]}
EXTERNAL = {"served_entities": [{"name": "gpt", "external_model": {
    "name": "gpt-4o-mini", "provider": "openai", "task": "llm/v1/chat",
    "openai_config": {"openai_api_key": "{{secrets/my-scope/openai-key}}"}}}]}

# command -> (the name of the model its body is validated with, a note, [(title, example body)])
BODIES: dict[str, tuple[str | None, str, list[tuple[str, dict[str, Any]]]]] = {
    "create": ("CreateEndpointRequest",
               "served_entities, served_models, traffic_config and auto_capture_config may also be given "
               "at the top level, beside name (the same fields as inside config; not both).",
               [("custom model (an MLflow model of the registry)", CUSTOM_MODEL),
                ("pay-per-token foundation model (system.ai, see the Unity Catalog models API)", PAY_PER_TOKEN),
                ("provisioned throughput (dedicated capacity)", PROVISIONED),
                ("external model (a provider's API, its key in a secret)", EXTERNAL)]),
    "create-provisioned-throughput-endpoint": (
        "CreatePtEndpointRequest", "", [("provisioned throughput", {"name": "my-pt", "config": PROVISIONED})]),
    "update-config": ("EndpointCoreConfigInput", "", [("custom model", CUSTOM_MODEL)]),
    "update-provisioned-throughput-endpoint-config": (
        "UpdatePtConfigRequest", "", [("provisioned throughput", {"config": PROVISIONED})]),
    "put-ai-gateway": ("AiGatewayConfig", "", [("rate limit and usage tracking", {
        "rate_limits": [{"calls": 100, "key": "user", "renewal_period": "minute"}],
        "usage_tracking_config": {"enabled": True}})]),
    "put": ("PutRateLimitsRequest", "", [("rate limit", {
        "rate_limits": [{"calls": 100, "key": "endpoint", "renewal_period": "minute"}]})]),
    "patch": ("PatchTagsRequest", "", [("tags", {"add_tags": [{"key": "team", "value": "ml"}],
                                                 "delete_tags": ["old"]})]),
    "update-notifications": ("UpdateNotificationsRequest", "", [("notifications", {
        "email_notifications": {"on_update_failure": ["me@example.com"]}})]),
    "patch-telemetry-config": ("PatchTelemetryRequest", "", [("telemetry", {
        "telemetry_config": {"enabled_telemetry_features": ["TELEMETRY_FEATURE_LOGS"]}})]),
    "set-permissions": ("PermissionsRequest", "", [("grant", {
        "access_control_list": [{"user_name": "me@example.com", "permission_level": "CAN_QUERY"}]})]),
    "update-permissions": ("PermissionsRequest", "", [("grant", {
        "access_control_list": [{"group_name": "users", "permission_level": "CAN_QUERY"}]})]),
    "query": (None, "The body depends on the endpoint: chat (messages), completions (prompt), embeddings "
              "(input), or a custom model's input (dataframe_split, dataframe_records, instances, inputs). "
              "`get-open-api NAME` gives an endpoint's exact request schema.",
              [("chat", {"messages": [{"role": "user", "content": "Hello, how are you?"}]}),
               ("embeddings", {"input": ["first text", "second text"]}),
               ("custom model", {"dataframe_split": {"columns": ["x"], "data": [[1.0]]}})]),
}


@functools.cache
def _schemas() -> tuple[dict[str, type[BaseModel]], dict[str, tuple[str, ...]]]:
    """The models by name, and the allowed values of fields the server checks outside their
    types. Imported when help is shown, not on every command's start."""
    from ladle.schemas import endpoints as s
    from ladle.schemas.gateway import AiGatewayConfig
    from ladle.schemas.permissions import PermissionsRequest

    models = {m.__name__: m for m in (
        s.CreateEndpointRequest, s.CreatePtEndpointRequest, s.EndpointCoreConfigInput, s.UpdatePtConfigRequest,
        AiGatewayConfig, s.PutRateLimitsRequest, s.PatchTagsRequest, s.UpdateNotificationsRequest,
        s.PatchTelemetryRequest, PermissionsRequest)}
    return models, {"workload_size": s.WORKLOAD_SIZES, "workload_type": s.WORKLOAD_TYPES}


def body_model(command: str) -> type[BaseModel] | None:
    """The model the server validates `command`'s body with (None: it depends on the endpoint)."""
    name = BODIES[command][0]
    return _schemas()[0][name] if name else None


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _describe(schema: dict[str, Any], defs: dict[str, Any]) -> tuple[str, list[Any], dict[str, Any] | None]:
    """(type, allowed values, the object schema whose fields come next) of a JSON schema."""
    schema = _resolve(schema, defs)
    if "anyOf" in schema:
        options = [_resolve(o, defs) for o in schema["anyOf"] if o.get("type") != "null"]
        if any(o.get("type") == "integer" for o in options):   # proto_int: an integer, or its decimal string
            options = [o for o in options if o.get("type") == "integer"]
        described = [_describe(o, defs) for o in options]
        types = list(dict.fromkeys(d[0] for d in described))
        enums = [v for d in described for v in d[1]]
        child = next((d[2] for d in described if d[2]), None)
        return " | ".join(types), enums, child
    if "enum" in schema or "const" in schema:
        return "string", list(schema.get("enum") or [schema["const"]]), None
    kind = schema.get("type", "any")
    if kind == "array":
        inner, enums, child = _describe(schema.get("items", {}), defs)
        return f"array of {inner}", enums, child
    if kind == "object" and "properties" in schema:
        return "object", [], schema
    if kind == "object":
        return "map", [], None
    return kind, [], None


def _fields(schema: dict[str, Any], defs: dict[str, Any], prefix: str, depth: int) -> list[str]:
    lines = []
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        kind, enums, child = _describe(prop, defs)
        enums = enums or list(_schemas()[1].get(name, ()))
        path = prefix + name + ("[]" if kind.startswith("array") else "")
        line = f"  {path}  {kind}{'  (required)' if name in required else ''}"
        if enums:
            line += "  one of: " + ", ".join(str(e) for e in enums)
        lines.append(line)
        if child is not None and depth < MAX_DEPTH:
            lines += _fields(child, defs, path + ".", depth + 1)
    return lines


def body_fields(model: type[BaseModel]) -> list[str]:
    schema = model.model_json_schema()
    return _fields(schema, schema.get("$defs", {}), "", 1)


def body_help(command: str) -> str:
    """The `-h` text of a command's JSON body ('' for a command without one)."""
    if command not in BODIES:
        return ""
    _, note, examples = BODIES[command]
    model = body_model(command)
    out = ["JSON body (--json):"]
    if model is not None:
        out += body_fields(model)
    if note:
        out += ["", "  " + note]
    for title, body in examples:
        out += ["", f"Example, {title}:", "  --json '" + json.dumps(body) + "'"]
    return "\n".join(out)


class BodyHelpCommand(LadleCommand):
    """Appends the JSON body's fields and examples to the command's help, verbatim."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        text = body_help(self.name or "")
        if text:
            formatter.write("\n")
            for line in text.splitlines():
                formatter.write(line + "\n")
