"""OAuth: the error the `/oidc/*` routes answer with (RFC 6749 section 5.2), and the bodies
of service principals' OAuth secrets (`/api/2.0/accounts/servicePrincipals/{id}/credentials/secrets`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ladle.schemas.wire import Body, Out

DEFAULT_SECRET_LIFETIME_S = 730 * 24 * 3600
MAX_SECRET_LIFETIME_S = 10_000_000_000


class OAuthError(Exception):
    """`{"error", "error_description"}`: invalid_request, invalid_client, invalid_grant,
    unauthorized_client, unsupported_grant_type, invalid_scope (400; invalid_client 401)."""

    def __init__(self, error: str, description: str, status: int | None = None) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status or (401 if error == "invalid_client" else 400)

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


Scope = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")]


class CreateServicePrincipalSecretRequest(Body):
    # seconds, as a string (as Databricks takes it); default 730 days
    lifetime: Annotated[str, Field(pattern=r"^[0-9]{1,11}s?$")] | None = None
    scopes: list[Scope] | None = Field(default=None, max_length=32)


class ServicePrincipalSecretInfo(Out):
    id: str
    status: str
    create_time: str
    update_time: str
    expire_time: str
    scopes: list[str] | None = None


class CreateServicePrincipalSecretResponse(ServicePrincipalSecretInfo):
    secret: str = Field(description="the secret; shown only in this answer")


class ListServicePrincipalSecretsResponse(Out):
    secrets: list[ServicePrincipalSecretInfo]
