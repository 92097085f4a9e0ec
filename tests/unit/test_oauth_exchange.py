"""The jwt-bearer grant with fakes behind its seams: what the scoped token carries, how long
it lives, and each refusal (nothing issued)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

from ladle.control.dataplane import authorization_details
from ladle.control.oauth_exchange import JwtBearerGrant
from ladle.control.oauth_grants import TokenRequest
from ladle.schemas.errors import ApiError
from ladle.schemas.oauth import OAuthError
from ladle.schemas.principal import Principal

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzcCJ9.c2ln"     # looks like a JWT (header decodes to JSON)
PAT = "dapi" + "1" * 64


class FakeStore:
    def __init__(self, endpoints):
        self.endpoints = endpoints

    async def call(self, fn, *args):
        return fn(*args)

    def get_endpoint_by_id(self, eid):
        name = self.endpoints.get(eid)
        return None if name is None else SimpleNamespace(id=eid, name=name)


class FakeKeys:
    def __init__(self):
        self.issued = []

    def issue(self, claims, ttl_s):
        self.issued.append((claims, ttl_s))
        return f"jwt-{len(self.issued)}"


def _grant(principal=Principal("sp", "service_principal"), claims=None, pat_expiry=None,
           levels=None, fail=None):
    async def authenticate(token):
        if fail:
            raise fail
        return principal

    async def claims_of(token):
        return claims

    keys = FakeKeys()
    grant = JwtBearerGrant(FakeStore({"e1": "churn", "e2": "other"}), keys, authenticate, claims_of,
                           lambda token: pat_expiry,
                           lambda p, eid: (levels or {"e1": "CAN_QUERY"}).get(eid))
    return grant, keys


def _run(grant, assertion=PAT, details=None):
    form = {"assertion": assertion, "authorization_details": details or authorization_details("e1")}
    return asyncio.run(grant(TokenRequest(form, None, None, "http://h/oidc")))


def test_a_pat_is_exchanged_for_a_token_scoped_to_the_endpoint_by_name():
    grant, keys = _grant(principal=Principal("bob", token_id="t1"))
    out = _run(grant)
    assert out == {"access_token": "jwt-1", "token_type": "Bearer", "expires_in": 3600,
                   "scope": "serving-endpoints"}
    claims, ttl = keys.issued[0]
    assert claims["sub"] == "bob" and claims["ladle_kind"] == "user" and claims["ladle_endpoints"] == ["churn"]
    assert claims["iss"] == "http://h/oidc" and "ladle_secret" not in claims and claims["ladle_pat"] == "t1"


def test_it_lives_no_longer_than_the_pat_it_came_from():
    grant, keys = _grant(pat_expiry=time.time() + 60)
    assert 55 <= _run(grant)["expires_in"] <= 60


def test_an_m2m_assertion_passes_its_secret_and_expiry_on():
    grant, keys = _grant(claims={"sub": "sp", "client_id": "sp", "ladle_secret": "s1",
                                 "exp": int(time.time()) + 120})
    out = _run(grant, JWT)
    claims, ttl = keys.issued[0]
    assert claims["ladle_secret"] == "s1" and claims["client_id"] == "sp"
    assert 115 <= ttl <= 120 and out["expires_in"] == ttl


@pytest.mark.parametrize("kwargs, details, error, status", [
    ({"principal": None}, None, "invalid_grant", 400),
    ({"principal": Principal("sp", endpoints=frozenset({"churn"}))}, None, "invalid_grant", 400),
    ({"levels": {"e1": "CAN_VIEW"}}, None, "invalid_authorization_details", 400),
    ({}, authorization_details("e2"), "invalid_authorization_details", 400),
    ({}, authorization_details("nope"), "invalid_authorization_details", 400),
    ({}, "{", "invalid_authorization_details", 400),
    ({"fail": ApiError("TEMPORARILY_UNAVAILABLE", "database away", 503)}, None, "temporarily_unavailable", 503),
])
def test_refusals_issue_nothing(kwargs, details, error, status):
    grant, keys = _grant(**kwargs)
    with pytest.raises(OAuthError) as e:
        _run(grant, details=details)
    assert (e.value.error, e.value.status) == (error, status) and e.value.description
    assert keys.issued == []


def test_every_endpoint_named_must_be_allowed():
    grant, keys = _grant(levels={"e1": "CAN_QUERY"})
    both = authorization_details("e1")[:-1] + "," + authorization_details("e2")[1:]
    with pytest.raises(OAuthError, match="e2"):
        _run(grant, details=both)
    assert keys.issued == []
    grant, keys = _grant(levels={"e1": "CAN_QUERY", "e2": "CAN_MANAGE"})
    _run(grant, details=both)
    assert keys.issued[0][0]["ladle_endpoints"] == ["churn", "other"]


def test_a_jwt_that_expires_between_the_two_checks_is_refused():
    grant, keys = _grant(claims=None)
    with pytest.raises(OAuthError) as e:
        _run(grant, JWT)
    assert e.value.error == "invalid_grant" and keys.issued == []
