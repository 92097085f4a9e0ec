"""Permission API bodies (Databricks' permissions API, for serving endpoints)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ladle.schemas.principal import LEVELS
from ladle.schemas.wire import Body, Name, Out

PRINCIPAL_KEYS = ("user_name", "group_name", "service_principal_name")
Level = Literal["CAN_VIEW", "CAN_QUERY", "CAN_MANAGE"]
assert tuple(Level.__args__) == LEVELS  # type: ignore[attr-defined]


class PrincipalGrant(Body):
    """One grant of an access control list: exactly one principal and a level (each object
    kind's subclass names its levels)."""

    user_name: Name | None = None
    group_name: Name | None = None
    service_principal_name: Name | None = None
    permission_level: str

    @model_validator(mode="after")
    def _one_principal(self) -> "PrincipalGrant":
        if sum(getattr(self, k) is not None for k in PRINCIPAL_KEYS) != 1:
            raise ValueError("exactly one of user_name, group_name or service_principal_name is required")
        return self

    def entry(self) -> tuple[str, str, str]:
        key = next(k for k in PRINCIPAL_KEYS if getattr(self, k) is not None)
        return key, getattr(self, key), self.permission_level


class AccessControlRequest(PrincipalGrant):
    permission_level: Level


class PermissionsRequest(Body):
    """PUT replaces every direct grant (an empty list removes them all); PATCH merges."""

    access_control_list: list[AccessControlRequest] = Field(default_factory=list)


class Permission(Out):
    permission_level: str
    inherited: bool
    inherited_from_object: list[str] | None = None


class AccessControlResponse(Out):
    user_name: str | None = None
    group_name: str | None = None
    service_principal_name: str | None = None
    display_name: str
    all_permissions: list[Permission]


class ObjectPermissions(Out):
    object_id: str
    object_type: str
    access_control_list: list[AccessControlResponse]


class PermissionLevel(Out):
    permission_level: str
    description: str


class PermissionLevelsResponse(Out):
    permission_levels: list[PermissionLevel]
