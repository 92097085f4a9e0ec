"""Apps: the wire shapes of /api/2.0/apps and the launch handed to the app runner."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from typing import Annotated

from pydantic import Field, field_validator, model_validator

from ladle.schemas.permissions import PrincipalGrant
from ladle.schemas.wire import Body, Name, Out, Text


@dataclass(frozen=True)
class AppLaunch:
    """One deployment, ready to run: the runner builds the env and starts `command` in `source_dir`.

    `env` already holds DATABRICKS_HOST, DATABRICKS_CLIENT_ID/SECRET, DATABRICKS_APP_NAME,
    DATABRICKS_APP_URL, DATABRICKS_WORKSPACE_ID and app.yaml's env; the runner adds the port vars.
    """
    app_name: str
    deployment_id: str
    source_dir: Path
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)


# -- request bodies -----------------------------------------------------------------------------
# Databricks' rule: lowercase letters, digits and dashes, 2 to 30 characters (no dash at either end).
APP_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,28}[a-z0-9]$")
APP_LEVELS = ("CAN_USE", "CAN_MANAGE")
# A workspace path (control/workspace_files.py checks its form and its bytes on disk).
WsPath = Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^[^\x00]*$")]
SERVING_LEVELS = ("CAN_VIEW", "CAN_QUERY", "CAN_MANAGE")
SECRET_LEVELS = ("READ", "WRITE", "MANAGE")


def check_app_name(name: str) -> str:
    if not APP_NAME.match(name):
        raise ValueError("an app name is 2 to 30 lowercase letters, digits and dashes, "
                         "starting and ending with a letter or digit")
    return name


class ServingEndpointResource(Body):
    name: Name
    permission: Literal["CAN_VIEW", "CAN_QUERY", "CAN_MANAGE"]


class SecretResource(Body):
    scope: Name
    key: Name
    permission: Literal["READ", "WRITE", "MANAGE"]


class AppResource(Body):
    """One resource the app uses, named by `name` (app.yaml's `valueFrom` refers to it)."""

    name: Name
    description: Text | None = None
    serving_endpoint: ServingEndpointResource | None = None
    secret: SecretResource | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> "AppResource":
        if (self.serving_endpoint is None) == (self.secret is None):
            raise ValueError("exactly one of serving_endpoint or secret is required "
                             "(the resource kinds ladle supports)")
        return self


class AppBody(Body):
    """What create and update take (the SDK sends the whole App; output-only fields are ignored)."""

    name: str | None = None
    description: Text | None = None
    resources: list[AppResource] | None = None
    user_api_scopes: list[Name] | None = None

    @field_validator("resources")
    @classmethod
    def _unique(cls, v: list[AppResource] | None) -> list[AppResource] | None:
        seen: set[str] = set()
        for r in v or ():
            if r.name in seen:
                raise ValueError(f"resource name '{r.name}' is used twice")
            seen.add(r.name)
        return v


class CreateApp(AppBody):
    name: str

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_app_name(v)


class CreateDeployment(Body):
    source_code_path: WsPath | None = None
    mode: Literal["SNAPSHOT", "AUTO_SYNC"] | None = None
    deployment_id: str | None = None


class AppAccessControl(PrincipalGrant):
    permission_level: Literal["CAN_USE", "CAN_MANAGE"]


class AppPermissionsRequest(Body):
    access_control_list: list[AppAccessControl] = Field(default_factory=list)


# -- workspace files ------------------------------------------------------------------------------
class WorkspacePath(Body):
    path: WsPath


class ImportBody(Body):
    """JSON import: `content` is base64 (the SDK's `w.workspace.import_`); the multipart form
    (`w.workspace.upload`) carries the same fields as form fields."""

    path: WsPath
    content: str | None = None
    format: Literal["SOURCE", "HTML", "JUPYTER", "DBC", "R_MARKDOWN", "AUTO", "RAW"] | None = None
    language: str | None = None
    overwrite: bool = False


class DeleteBody(Body):
    path: WsPath
    recursive: bool = False


class ExportQuery(Body):
    """`direct_download=true` (what `w.workspace.download` sends) answers the raw bytes instead:
    left out of the document, which can give an operation one answer type only."""

    path: WsPath
    format: Literal["SOURCE", "HTML", "JUPYTER", "DBC", "R_MARKDOWN", "AUTO", "RAW"] | None = None


# -- answers (the document describes what a client can rely on) ------------------------------------
class Status(Out):
    state: str
    message: str | None = None


class AppDeploymentOut(Out):
    deployment_id: str
    source_code_path: str
    mode: str
    status: Status
    creator: str
    create_time: str
    update_time: str


class AppOut(Out):
    name: str
    id: str
    description: str
    url: str
    creator: str
    create_time: str
    update_time: str
    resources: list[dict[str, Any]]
    service_principal_id: int
    service_principal_client_id: str
    compute_status: Status
    app_status: Status
    active_deployment: AppDeploymentOut | None = None
    pending_deployment: AppDeploymentOut | None = None


class ListAppsOut(Out):
    apps: list[AppOut]


class ListAppDeploymentsOut(Out):
    app_deployments: list[AppDeploymentOut]


class ObjectInfo(Out):
    path: str
    object_type: Literal["DIRECTORY", "FILE"]
    object_id: int
    size: int | None = None
    modified_at: int | None = None


class ListObjectsOut(Out):
    objects: list[ObjectInfo]


class ExportOut(Out):
    content: str
    file_type: str
