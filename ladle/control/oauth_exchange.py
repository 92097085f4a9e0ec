"""The jwt-bearer grant (`urn:ietf:params:oauth:grant-type:jwt-bearer`, RFC 7523): a caller
exchanges its ladle access token (the `assertion`: a personal access token or an OAuth JWT)
for a short-lived token scoped to the serving endpoints its `authorization_details` name.

This is how databricks-sdk's `serving_endpoints_data_plane.query` gets the token for a
route-optimized endpoint: it posts `authorization_details` from the endpoint's
`data_plane_info.query_info` verbatim (see control/dataplane.py). The assertion is checked as
every request's bearer token is (the same authenticate step); the caller must hold CAN_QUERY
on each endpoint named. The answer is a JWT with `ladle_endpoints: [<name>, ...]`, which the
auth middleware lets call only those endpoints' invocations (gateway/scope.py); it lives at
most an hour and never longer than the assertion it came from, and it cannot itself be
exchanged again. Every refusal is an OAuthError and issues nothing."""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable

from ladle.control.dataplane import requested_endpoint_ids
from ladle.control.oauth_grants import TokenRequest
from ladle.control.oauth_keys import SigningKeys, looks_like_jwt
from ladle.control.store import EndpointRecord, Store
from ladle.schemas.errors import ApiError
from ladle.schemas.oauth import OAuthError
from ladle.schemas.principal import Principal, at_least

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TTL_S = 3600
# RFC 9396 section 5: the error for authorization details that are malformed or not allowed
BAD_DETAILS = "invalid_authorization_details"


class JwtBearerGrant:
    def __init__(self, store: Store, keys: SigningKeys,
                 authenticate: Callable[[str], Awaitable[Principal | None]],
                 claims_of: Callable[[str], Awaitable[dict[str, Any] | None]],
                 expiry_of_pat: Callable[[str], float | None],
                 level_of: Callable[[Principal, str], str | None]) -> None:
        self.store = store
        self.keys = keys
        self.authenticate = authenticate   # the auth middleware's: PATs and JWTs, principal still exists
        self.claims_of = claims_of         # a valid JWT's claims (signature, expiry), else None
        self.expiry_of_pat = expiry_of_pat # a personal access token's expiry (epoch s), None = never
        self.level_of = level_of           # the principal's permission level on an endpoint id

    async def __call__(self, req: TokenRequest) -> dict[str, Any]:
        assertion = req.form.get("assertion", "")
        details = req.form.get("authorization_details", "")
        if not assertion:
            raise OAuthError("invalid_request", "assertion: required (the access token to exchange)")
        if not details:
            raise OAuthError("invalid_request", "authorization_details: required (the serving "
                             "endpoint's data_plane_info.query_info.authorization_details)")
        try:
            ids = requested_endpoint_ids(details)
        except ValueError as e:
            raise OAuthError(BAD_DETAILS, str(e)) from None
        p, claims = await self._assertion(assertion)
        names = []
        for eid in dict.fromkeys(ids):
            rec: EndpointRecord | None = await self.store.call(self.store.get_endpoint_by_id, eid)
            # the same answer for an unknown endpoint and one the caller may not query: a
            # refusal does not tell whether an endpoint exists
            if rec is None or not at_least(self.level_of(p, rec.id), "CAN_QUERY"):
                raise OAuthError(BAD_DETAILS, "the caller is not authorized to the requested "
                                 f"authorizations: CAN_QUERY on serving endpoint '{eid}' is needed")
            names.append(rec.name)
        ttl = self._ttl(assertion, claims)
        out = {"iss": req.issuer, "sub": p.name, "ladle_kind": p.kind,
               "client_id": (claims or {}).get("client_id", ""), "scope": "serving-endpoints",
               "ladle_endpoints": names}
        if claims and claims.get("ladle_secret") is not None:
            out["ladle_secret"] = claims["ladle_secret"]   # revoking the secret revokes this too
        if claims is None and p.token_id:
            out["ladle_pat"] = p.token_id                  # the personal access token it came from
        return {"access_token": self.keys.issue(out, ttl), "token_type": "Bearer",
                "expires_in": ttl, "scope": out["scope"]}

    async def _assertion(self, assertion: str) -> tuple[Principal, dict[str, Any] | None]:
        try:
            p = await self.authenticate(assertion)
            claims = await self.claims_of(assertion) if p is not None and looks_like_jwt(assertion) else None
        except ApiError as e:      # the database cannot be reached to check it
            raise OAuthError("temporarily_unavailable", e.message, 503) from None
        if p is None or (claims is None and looks_like_jwt(assertion)):   # (expired just now)
            raise OAuthError("invalid_grant", "assertion: not a valid ladle access token (unknown, "
                             "expired or revoked, or its principal no longer exists)")
        if p.endpoints is not None:
            raise OAuthError("invalid_grant", "assertion: a token scoped to serving endpoints "
                             "cannot be exchanged again")
        if p.model_scope is not None:
            raise OAuthError("invalid_grant", "assertion: a replica's model fetch token cannot be exchanged")
        return p, claims

    def _ttl(self, assertion: str, claims: dict[str, Any] | None) -> int:
        ends = claims.get("exp") if claims else self.expiry_of_pat(assertion)
        if ends is None:
            return TTL_S
        return max(1, min(TTL_S, int(ends - time.time())))
