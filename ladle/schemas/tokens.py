"""Token API bodies (Databricks' token and token-management APIs)."""

from __future__ import annotations

from pydantic import Field, model_validator

from ladle.schemas.wire import Body, Name, Out, Text, proto_int

# ~317 years: far beyond any sensible token, small enough for the store's 64-bit milliseconds.
MAX_LIFETIME_S = 10_000_000_000


class CreateTokenRequest(Body):
    """`POST /api/2.0/token/create`: a token for the caller."""

    comment: Text | None = None
    # 0 or absent: the token never expires
    lifetime_seconds: proto_int(ge=0, le=MAX_LIFETIME_S) | None = None  # type: ignore[valid-type]


class CreateOboTokenRequest(Body):
    """`POST /api/2.0/token-management/on-behalf-of/tokens`: a token for a user (ladle
    extension: `user_name`) or a service principal (`application_id`)."""

    application_id: Name | None = None
    user_name: Name | None = None
    comment: Text | None = None
    lifetime_seconds: proto_int(ge=0, le=MAX_LIFETIME_S) | None = None  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _one_principal(self) -> "CreateOboTokenRequest":
        if (self.user_name is None) == (self.application_id is None):
            raise ValueError("exactly one of user_name or application_id (service principal) is required")
        return self


class DeleteTokenRequest(Body):
    """`POST /api/2.0/token/delete`: revoke one of the caller's tokens."""

    token_id: Name


class ListTokensQuery(Body):
    """`GET /api/2.0/token-management/tokens` filters (admins)."""

    created_by_id: proto_int() | None = None  # type: ignore[valid-type]
    created_by_username: Name | None = None


class TokenInfo(Out):
    token_id: str
    comment: str
    creation_time: int
    expiry_time: int = Field(description="-1: never expires")
    owner_id: int = Field(description="the owner's SCIM id")
    owner_name: str = Field(description="the owner's name (userName or applicationId)")
    created_by_username: str
    principal_type: str
    created_by_id: int | None = Field(default=None, description="the creator's SCIM id")
    workspace_id: int | None = None


class CreateTokenResponse(Out):
    token_value: str
    token_info: TokenInfo


class ListTokensResponse(Out):
    token_infos: list[TokenInfo]


class GetTokenResponse(Out):
    token_info: TokenInfo
