"""Permission API bodies for MLflow experiments and registered models (Databricks'
`/api/2.0/permissions/{experiments|registered-models}/{id}`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PRINCIPAL_KEYS = ("user_name", "group_name", "service_principal_name")
PrincipalName = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\x00]+$")]
RegistryLevel = Literal["CAN_READ", "CAN_EDIT", "CAN_MANAGE_STAGING_VERSIONS",
                        "CAN_MANAGE_PRODUCTION_VERSIONS", "CAN_MANAGE"]


class RegistryAccessControl(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    user_name: PrincipalName | None = None
    group_name: PrincipalName | None = None
    service_principal_name: PrincipalName | None = None
    permission_level: RegistryLevel

    @model_validator(mode="after")
    def _one_principal(self) -> "RegistryAccessControl":
        if sum(getattr(self, k) is not None for k in PRINCIPAL_KEYS) != 1:
            raise ValueError("exactly one of user_name, group_name or service_principal_name is required")
        return self

    def entry(self) -> tuple[str, str, str]:
        key = next(k for k in PRINCIPAL_KEYS if getattr(self, k) is not None)
        return key, getattr(self, key), self.permission_level


class RegistryPermissionsRequest(BaseModel):
    """PUT replaces every grant but the owner's (an empty list removes them); PATCH merges."""

    model_config = ConfigDict(extra="ignore", strict=True)

    access_control_list: list[RegistryAccessControl] = Field(default_factory=list)
