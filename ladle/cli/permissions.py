"""`ladle permissions`: mirrors `databricks permissions` for the objects ladle keeps
permissions on: `serving-endpoints` (by endpoint id), `experiments` (by MLflow experiment id)
and `registered-models` (by model name)."""

from __future__ import annotations

from typing import Any

import click

from ladle.cli.client import from_context, seg
from ladle.cli.options import LadleGroup, json_option
from ladle.cli.output import emit_json

BASE = "/api/2.0/permissions"


@click.group("permissions", cls=LadleGroup, short_help="Read and set permissions on objects.")
def permissions() -> None:
    """Permissions on serving endpoints, MLflow experiments and registered models.

    These commands mirror the Databricks CLI's permissions group.
    """


def _path(object_type: str, object_id: str) -> str:
    return f"{BASE}/{seg(object_type)}/{seg(object_id)}"


@permissions.command("get")
@click.argument("request_object_type")
@click.argument("request_object_id")
@click.pass_context
def get(ctx: click.Context, request_object_type: str, request_object_id: str) -> None:
    """Get object permissions.

    REQUEST_OBJECT_TYPE is serving-endpoints, experiments or registered-models;
    REQUEST_OBJECT_ID is the endpoint's id, the experiment's id or the model's name.
    """
    emit_json(from_context(ctx).call("GET", _path(request_object_type, request_object_id)))


@permissions.command("get-permission-levels")
@click.argument("request_object_type")
@click.argument("request_object_id")
@click.pass_context
def get_permission_levels(ctx: click.Context, request_object_type: str, request_object_id: str) -> None:
    """Get object permission levels.

    REQUEST_OBJECT_TYPE is serving-endpoints, experiments or registered-models;
    REQUEST_OBJECT_ID is the endpoint's id, the experiment's id or the model's name.
    """
    emit_json(from_context(ctx).call(
        "GET", _path(request_object_type, request_object_id) + "/permissionLevels"))


@permissions.command("set")
@click.argument("request_object_type")
@click.argument("request_object_id")
@json_option
@click.pass_context
def set_(ctx: click.Context, request_object_type: str, request_object_id: str,
         json_body: dict[str, Any] | None) -> None:
    """Set object permissions.

    Replaces the object's direct grants with `access_control_list` (none: removes them; the
    owner of an experiment or a registered model stays its owner).

    REQUEST_OBJECT_TYPE is serving-endpoints, experiments or registered-models;
    REQUEST_OBJECT_ID is the endpoint's id, the experiment's id or the model's name.
    """
    emit_json(from_context(ctx).call("PUT", _path(request_object_type, request_object_id),
                                     dict(json_body or {})))


@permissions.command("update")
@click.argument("request_object_type")
@click.argument("request_object_id")
@json_option
@click.pass_context
def update(ctx: click.Context, request_object_type: str, request_object_id: str,
           json_body: dict[str, Any] | None) -> None:
    """Update object permissions.

    Adds or changes the grants in `access_control_list`, keeping the others.

    REQUEST_OBJECT_TYPE is serving-endpoints, experiments or registered-models;
    REQUEST_OBJECT_ID is the endpoint's id, the experiment's id or the model's name.
    """
    emit_json(from_context(ctx).call("PATCH", _path(request_object_type, request_object_id),
                                     dict(json_body or {})))
