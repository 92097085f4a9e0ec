"""SCIM bodies (`/api/2.0/preview/scim/v2/...`, the part databricks-sdk's iam API sends):
Users, ServicePrincipals, Groups, their list answers and PATCH operations."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from ladle.schemas.groups import NAME_PATTERN
from ladle.schemas.wire import Body, Name, Out, proto_int

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SERVICE_PRINCIPAL = "urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


class Ref(Body):
    """A reference to a principal or group, by `value` (its id)."""
    value: Name
    display: str | None = None


class Email(Body):
    value: Name
    primary: bool | None = None
    type: str | None = None


class CreateUser(Body):
    userName: Name
    displayName: Name | None = None
    active: Literal[True] | None = Field(default=None, description="only true: ladle has no "
                                         "inactive principals (delete one instead)")
    emails: list[Email] | None = None
    groups: list[Ref] | None = Field(default=None, max_length=100)


class CreateServicePrincipal(Body):
    applicationId: Name | None = Field(default=None, description="its name in tokens and ACLs; "
                                       "a new UUID when absent")
    displayName: Name | None = None
    active: Literal[True] | None = None
    groups: list[Ref] | None = Field(default=None, max_length=100)


class CreateScimGroup(Body):
    displayName: str = Field(pattern=NAME_PATTERN, description="1-128 letters, digits, spaces or "
                             "._@+- starting with a letter or digit; not 'users' or 'admins'")
    members: list[Ref] | None = Field(default=None, max_length=1000)


class PatchOperation(Body):
    op: Literal["add", "remove", "replace"]
    path: str | None = Field(default=None, max_length=1000)
    value: Any = None

    @field_validator("op", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:       # SCIM operation names are case-insensitive
        return v.lower() if isinstance(v, str) else v


class PatchRequest(Body):
    Operations: list[PatchOperation] = Field(min_length=1, max_length=100)
    schemas: list[str] | None = None


class ListQuery(Body):
    filter: str | None = Field(default=None, max_length=1000,
                               description='e.g. userName eq "a@b.c"; ops eq ne co sw ew pr, and/or')
    startIndex: proto_int(ge=1) | None = None          # type: ignore[valid-type]
    count: proto_int(ge=0) | None = None               # type: ignore[valid-type]
    attributes: str | None = Field(default=None, max_length=1000)
    excludedAttributes: str | None = Field(default=None, max_length=1000)
    sortBy: str | None = Field(default=None, max_length=100)
    sortOrder: Literal["ascending", "descending"] | None = None


class GetQuery(Body):
    attributes: str | None = Field(default=None, max_length=1000)
    excludedAttributes: str | None = Field(default=None, max_length=1000)


class ComplexValue(Out):
    value: str
    display: str | None = None


# Answers: every attribute but id and schemas may be left out by `attributes` /
# `excludedAttributes`.
class User(Out):
    id: str
    userName: str | None = None
    displayName: str | None = None
    active: bool | None = None
    emails: list[ComplexValue] | None = None
    groups: list[ComplexValue] | None = None
    schemas: list[str]


class ServicePrincipal(Out):
    id: str
    applicationId: str | None = None
    displayName: str | None = None
    active: bool | None = None
    groups: list[ComplexValue] | None = None
    schemas: list[str]


class ScimGroup(Out):
    id: str
    displayName: str | None = None
    members: list[ComplexValue] | None = None
    schemas: list[str]


class _List(Out):
    totalResults: int
    startIndex: int
    itemsPerPage: int
    schemas: list[str]


class ListUsers(_List):
    Resources: list[User]


class ListServicePrincipals(_List):
    Resources: list[ServicePrincipal]


class ListScimGroups(_List):
    Resources: list[ScimGroup]


class Me(User):
    """The caller: a user, or a service principal (userName = its applicationId)."""

