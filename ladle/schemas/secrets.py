"""Bodies and query parameters of the Databricks secrets API (`/api/2.0/secrets/*`), shaped
like the databricks-sdk's `workspace` service (CreateScope, PutSecret, PutAcl, AclItem, ...).
Types are strict (a number is not a string); unknown fields are ignored (a newer client may
send more); a wrong type or value is a 400 naming the field."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator, BaseModel, ConfigDict, StringConstraints, field_validator, model_validator,
)

SCOPE_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,128}$")
KEY_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
PRINCIPAL_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,256}$")
PERMISSIONS = ("READ", "WRITE", "MANAGE")          # each includes the ones before it
Permission = Literal["READ", "WRITE", "MANAGE"]
MAX_VALUE_BYTES = 128 * 1024


def _scope(v: str) -> str:
    if not SCOPE_RE.match(v):
        raise ValueError("must be 1-128 letters, digits, '-', '_', '.' or '@'")
    return v


def _key(v: str) -> str:
    if not KEY_RE.match(v):
        raise ValueError("must be 1-128 letters, digits, '-', '_' or '.'")
    return v


def _principal(v: str) -> str:
    if not PRINCIPAL_RE.match(v) or v.strip() != v:
        raise ValueError("a user, service principal or group name of 1-256 characters is required")
    return v


def _fits(v: str) -> str:
    if len(v.encode()) > MAX_VALUE_BYTES:
        raise ValueError("a secret value is at most 128 KB")
    return v


Name = Annotated[str, StringConstraints(min_length=1, max_length=256)]
ScopeName = Annotated[str, AfterValidator(_scope)]
KeyName = Annotated[str, AfterValidator(_key)]
PrincipalName = Annotated[str, AfterValidator(_principal)]


class SecretsInput(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class CreateScope(SecretsInput):
    scope: ScopeName
    initial_manage_principal: Literal["users"] | None = None
    scope_backend_type: Literal["DATABRICKS"] | None = None


class ScopeRef(SecretsInput):
    """delete-scope, list-secrets and list-acls."""
    scope: Name


class PutSecret(SecretsInput):
    scope: Name
    key: KeyName
    string_value: str | None = None
    bytes_value: str | None = None

    @field_validator("string_value")
    @classmethod
    def _size(cls, v: str | None) -> str | None:
        return v if v is None else _fits(v)

    @field_validator("bytes_value")
    @classmethod
    def _text(cls, v: str | None) -> str | None:
        """ladle keeps secret values as text: bytes must be base64 of UTF-8."""
        if v is None:
            return v
        try:
            text = base64.b64decode(v, validate=True).decode()
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise ValueError("must be base64 of UTF-8 text") from None
        return _fits(text)

    @model_validator(mode="after")
    def _one_value(self) -> "PutSecret":
        if (self.string_value is None) == (self.bytes_value is None):
            raise ValueError("exactly one of string_value or bytes_value is required")
        return self

    @property
    def value(self) -> str:
        """The value as text (bytes_value arrives decoded)."""
        return self.string_value if self.string_value is not None else self.bytes_value or ""


class SecretRef(SecretsInput):
    """delete-secret and get-secret."""
    scope: Name
    key: Name


class PutAcl(SecretsInput):
    scope: Name
    principal: PrincipalName
    permission: Permission


class AclRef(SecretsInput):
    """get-acl and delete-acl."""
    scope: Name
    principal: Name


# -- answers (for the API's document; the handlers build plain dicts of these shapes) ---------

class AclItem(BaseModel):
    principal: str
    permission: Permission


class ListAclsResponse(BaseModel):
    items: list[AclItem] = []


class SecretScope(BaseModel):
    name: str
    backend_type: Literal["DATABRICKS"] = "DATABRICKS"


class ListScopesResponse(BaseModel):
    scopes: list[SecretScope] = []


class SecretMetadata(BaseModel):
    key: str
    last_updated_timestamp: int


class ListSecretsResponse(BaseModel):
    secrets: list[SecretMetadata] = []
