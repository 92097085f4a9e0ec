"""Permission API bodies for MLflow experiments and registered models (Databricks'
`/api/2.0/permissions/{experiments|registered-models}/{id}`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ladle.schemas.permissions import PrincipalGrant
from ladle.schemas.wire import Body

RegistryLevel = Literal["CAN_READ", "CAN_EDIT", "CAN_MANAGE_STAGING_VERSIONS",
                        "CAN_MANAGE_PRODUCTION_VERSIONS", "CAN_MANAGE"]


class RegistryAccessControl(PrincipalGrant):
    permission_level: RegistryLevel


class RegistryPermissionsRequest(Body):
    """PUT replaces every grant but the owner's (an empty list removes them); PATCH merges."""

    access_control_list: list[RegistryAccessControl] = Field(default_factory=list)
