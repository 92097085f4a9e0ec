"""`ladle serving-endpoints`: mirrors `databricks serving-endpoints`, talking to the HTTP API only.

Long-running commands live in serving_endpoints_lro.py, `query` in serving_endpoints_query.py.
"""

from __future__ import annotations

from typing import Any

import click

from ladle.cli.client import from_context, seg
from ladle.cli.options import LadleGroup, json_option
from ladle.cli.output import emit_json, emit_list, emit_raw, require_text_output
from ladle.cli.serving_endpoints_lro import (
    create,
    create_provisioned_throughput_endpoint,
    update_config,
    update_provisioned_throughput_endpoint_config,
)
from ladle.cli.serving_endpoints_help import BodyHelpCommand
from ladle.cli.serving_endpoints_query import query

BASE = "/api/2.0/serving-endpoints"
PERMISSIONS = "/api/2.0/permissions/serving-endpoints"


class _Group(LadleGroup):
    command_class = BodyHelpCommand   # `-h` of a command with --json shows its body


@click.group("serving-endpoints", cls=_Group, short_help="Create, manage and query model serving endpoints.")
def serving_endpoints() -> None:
    """The Serving Endpoints API allows you to create, update, and delete model serving endpoints.

    You can use a serving endpoint to serve models from the model registry, foundation models
    or external LLM providers. Each endpoint can serve several entities and split traffic
    between them. These commands mirror the Databricks CLI's serving-endpoints group.
    """


for _command in (
    create,
    create_provisioned_throughput_endpoint,
    update_config,
    update_provisioned_throughput_endpoint_config,
    query,
):
    serving_endpoints.add_command(_command)


def _body(json_body: dict[str, Any] | None) -> dict[str, Any]:
    return dict(json_body) if json_body else {}


@serving_endpoints.command("build-logs")
@click.argument("name")
@click.argument("served_model_name")
@click.pass_context
def build_logs(ctx: click.Context, name: str, served_model_name: str) -> None:
    """Get build logs for a served model.

    Retrieves the build logs associated with the provided served model.

    NAME is the name of the serving endpoint that the served model belongs to.
    SERVED_MODEL_NAME is the name of the served model that build logs will be retrieved for.
    """
    emit_json(from_context(ctx).call("GET", f"{BASE}/{seg(name)}/served-models/{seg(served_model_name)}/build-logs"))


@serving_endpoints.command("delete")
@click.argument("name")
@click.pass_context
def delete(ctx: click.Context, name: str) -> None:
    """Delete a serving endpoint.

    NAME is the name of the serving endpoint.
    """
    from_context(ctx).call("DELETE", f"{BASE}/{seg(name)}")


@serving_endpoints.command("export-metrics")
@click.argument("name")
@click.pass_context
def export_metrics(ctx: click.Context, name: str) -> None:
    """Get metrics of a serving endpoint.

    Retrieves the metrics associated with the provided serving endpoint in either Prometheus
    or OpenMetrics exposition format.

    NAME is the name of the serving endpoint to retrieve metrics for.
    """
    require_text_output(ctx)
    response = from_context(ctx).request("GET", f"{BASE}/{seg(name)}/metrics", accept="text/plain")
    emit_raw(response.content)


@serving_endpoints.command("get")
@click.argument("name")
@click.pass_context
def get(ctx: click.Context, name: str) -> None:
    """Get a single serving endpoint.

    Retrieves the details for a single serving endpoint.

    NAME is the name of the serving endpoint.
    """
    emit_json(from_context(ctx).call("GET", f"{BASE}/{seg(name)}"))


@serving_endpoints.command("get-open-api")
@click.argument("name")
@click.pass_context
def get_open_api(ctx: click.Context, name: str) -> None:
    """Get the schema for a serving endpoint.

    Get the query schema of the serving endpoint in OpenAPI format. The schema contains
    information for the supported paths, input and output format and datatypes.

    NAME is the name of the serving endpoint that the served model belongs to.
    """
    require_text_output(ctx)
    response = from_context(ctx).request("GET", f"{BASE}/{seg(name)}/openapi", accept="text/plain")
    emit_raw(response.content)


@serving_endpoints.command("get-permission-levels")
@click.argument("serving_endpoint_id")
@click.pass_context
def get_permission_levels(ctx: click.Context, serving_endpoint_id: str) -> None:
    """Get serving endpoint permission levels.

    Gets the permission levels that a user can have on an object.

    SERVING_ENDPOINT_ID is the serving endpoint's id (not its name).
    """
    emit_json(from_context(ctx).call("GET", f"{PERMISSIONS}/{seg(serving_endpoint_id)}/permissionLevels"))


@serving_endpoints.command("get-permissions")
@click.argument("serving_endpoint_id")
@click.pass_context
def get_permissions(ctx: click.Context, serving_endpoint_id: str) -> None:
    """Get serving endpoint permissions.

    Gets the permissions of a serving endpoint. Serving endpoints can inherit permissions
    from their root object.

    SERVING_ENDPOINT_ID is the serving endpoint's id (not its name).
    """
    emit_json(from_context(ctx).call("GET", f"{PERMISSIONS}/{seg(serving_endpoint_id)}"))


@serving_endpoints.command("http-request", hidden=True)
@click.argument("connection_name")
@click.argument("method")
@click.argument("path")
@click.option("--headers", help="Additional headers for the request.")
@json_option
@click.option("--params", help="Query parameters for the request.")
@click.option("--sub-domain", help="Optional subdomain to append to the connection host.")
def http_request(**_: Any) -> None:
    """Make external services call using the credentials stored in UC Connection."""
    raise click.ClickException("http-request is not supported by ladle")


@serving_endpoints.command("list")
@click.option("--limit", type=int, default=0, help="Maximum number of results to return (0 = all).")
@click.pass_context
def list_(ctx: click.Context, limit: int) -> None:
    """Get all serving endpoints."""
    if limit < 0:
        raise click.ClickException("--limit must be a non-negative integer")
    answer = from_context(ctx).call("GET", BASE) or {}
    emit_list(answer.get("endpoints") or [], limit)


@serving_endpoints.command("logs")
@click.argument("name")
@click.argument("served_model_name")
@click.pass_context
def logs(ctx: click.Context, name: str, served_model_name: str) -> None:
    """Get the latest logs for a served model.

    Retrieves the service logs associated with the provided served model.

    NAME is the name of the serving endpoint that the served model belongs to.
    SERVED_MODEL_NAME is the name of the served model that logs will be retrieved for.
    """
    emit_json(from_context(ctx).call("GET", f"{BASE}/{seg(name)}/served-models/{seg(served_model_name)}/logs"))


@serving_endpoints.command("patch")
@click.argument("name")
@json_option
@click.pass_context
def patch(ctx: click.Context, name: str, json_body: dict[str, Any] | None) -> None:
    """Update tags of a serving endpoint.

    Used to batch add and delete tags from a serving endpoint with a single API call
    (JSON keys `add_tags` and `delete_tags`).

    NAME is the name of the serving endpoint who's tags to patch.
    """
    emit_json(from_context(ctx).call("PATCH", f"{BASE}/{seg(name)}/tags", _body(json_body)))


@serving_endpoints.command("patch-telemetry-config")
@click.argument("name")
@json_option
@click.pass_context
def patch_telemetry_config(ctx: click.Context, name: str, json_body: dict[str, Any] | None) -> None:
    """Update telemetry config of a serving endpoint.

    An empty body (no `telemetry_config`) removes telemetry from the endpoint.

    NAME is the name of the serving endpoint.
    """
    emit_json(from_context(ctx).call("PATCH", f"{BASE}/{seg(name)}/telemetry-config", _body(json_body)))


@serving_endpoints.command("put")
@click.argument("name")
@json_option
@click.pass_context
def put(ctx: click.Context, name: str, json_body: dict[str, Any] | None) -> None:
    """Update rate limits of a serving endpoint.

    Deprecated: please use AI Gateway (put-ai-gateway) to manage rate limits instead.

    NAME is the name of the serving endpoint whose rate limits are being updated.
    """
    emit_json(from_context(ctx).call("PUT", f"{BASE}/{seg(name)}/rate-limits", _body(json_body)))


@serving_endpoints.command("put-ai-gateway")
@click.argument("name")
@json_option
@click.pass_context
def put_ai_gateway(ctx: click.Context, name: str, json_body: dict[str, Any] | None) -> None:
    """Update AI Gateway of a serving endpoint.

    Used to update the AI Gateway of a serving endpoint: guardrails, inference tables,
    rate limits, usage tracking and fallbacks.

    NAME is the name of the serving endpoint whose AI Gateway is being updated.
    """
    emit_json(from_context(ctx).call("PUT", f"{BASE}/{seg(name)}/ai-gateway", _body(json_body)))


@serving_endpoints.command("set-permissions")
@click.argument("serving_endpoint_id")
@json_option
@click.pass_context
def set_permissions(ctx: click.Context, serving_endpoint_id: str, json_body: dict[str, Any] | None) -> None:
    """Set serving endpoint permissions.

    Sets permissions on an object, replacing existing permissions if they exist. Deletes all
    direct permissions if none are specified.

    SERVING_ENDPOINT_ID is the serving endpoint's id (not its name).
    """
    emit_json(from_context(ctx).call("PUT", f"{PERMISSIONS}/{seg(serving_endpoint_id)}", _body(json_body)))


@serving_endpoints.command("update-notifications")
@click.argument("name")
@json_option
@click.pass_context
def update_notifications(ctx: click.Context, name: str, json_body: dict[str, Any] | None) -> None:
    """Update the notifications of a serving endpoint.

    Updates the email notifications (`email_notifications`) of a serving endpoint.

    NAME is the name of the serving endpoint whose notifications are being updated.
    """
    emit_json(from_context(ctx).call("PATCH", f"{BASE}/{seg(name)}/notifications", _body(json_body)))


@serving_endpoints.command("update-permissions")
@click.argument("serving_endpoint_id")
@json_option
@click.pass_context
def update_permissions(ctx: click.Context, serving_endpoint_id: str, json_body: dict[str, Any] | None) -> None:
    """Update serving endpoint permissions.

    Updates the permissions on a serving endpoint. Serving endpoints can inherit permissions
    from their root object.

    SERVING_ENDPOINT_ID is the serving endpoint's id (not its name).
    """
    emit_json(from_context(ctx).call("PATCH", f"{PERMISSIONS}/{seg(serving_endpoint_id)}", _body(json_body)))
