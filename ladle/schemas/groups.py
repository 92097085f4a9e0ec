"""Group API bodies (`/api/2.0/ladle/groups`, ladle's own)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from ladle.schemas.wire import Body, Name, Out

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@+\- ]{0,127}$"
NAME_RE = re.compile(NAME_PATTERN)
BUILTIN = frozenset({"users", "admins"})


class CreateGroupRequest(Body):
    display_name: str = Field(pattern=NAME_PATTERN, description="1-128 letters, digits, spaces or "
                              "._@+- starting with a letter or digit; not 'users' or 'admins'")


class AddMemberRequest(Body):
    user_name: Name | None = None
    service_principal_name: Name | None = None

    @model_validator(mode="after")
    def _one(self) -> "AddMemberRequest":
        if (self.user_name is None) == (self.service_principal_name is None):
            raise ValueError("exactly one of user_name or service_principal_name is required")
        return self

    def member(self) -> tuple[str, str]:
        if self.user_name is not None:
            return self.user_name, "user"
        assert self.service_principal_name is not None
        return self.service_principal_name, "service_principal"


class GroupMember(Out):
    name: str
    type: Literal["user", "service_principal"]


class Group(Out):
    display_name: str
    members: list[GroupMember]


class ListGroupsResponse(Out):
    groups: list[Group]
