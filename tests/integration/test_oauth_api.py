"""ladle's OAuth server in process: discovery, service principals' secrets (shown once,
hashed, expiring, revocable), the client credentials, authorization code + PKCE and refresh
token grants, and the JWTs they issue as API credentials. Every refusal is in OAuth's shape
on /oidc/* (the API's elsewhere), issues nothing, and logs no secret."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from sqlalchemy import select

from ladle.control.store_tables import oauth_grants_t, oauth_secrets_t

SCIM = "/api/2.0/preview/scim/v2"
TOKEN = "/oidc/v1/token"
REDIRECT = "http://localhost:8020"


def _sp(client, name: str = "bot") -> dict[str, Any]:
    r = client.post(SCIM + "/ServicePrincipals", json={"displayName": name})
    assert r.status_code == 200, r.text
    return r.json()


def _secrets_path(sp: dict[str, Any]) -> str:
    return f"/api/2.0/accounts/servicePrincipals/{sp['id']}/credentials/secrets"


def _secret(client, sp, **body) -> dict[str, Any]:
    r = client.post(_secrets_path(sp), json=body)
    assert r.status_code == 200, r.text
    return r.json()


def _basic(cid: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{cid}:{secret}".encode()).decode()}


def _m2m(client, cid: str, secret: str, **form):
    return client.post(TOKEN, data={"grant_type": "client_credentials", "scope": "all-apis", **form},
                       headers=_basic(cid, secret))


def _bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


def _rows(client, table) -> list[Any]:
    store = client.app.app.state.services.tokens.store    # AuthMiddleware -> Starlette
    with store.engine.connect() as c:
        return c.execute(select(table)).all()


def _oauth_error(r, status: int, error: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "error_description"} and body["error"] == error, body
    return body["error_description"]


# -- discovery ---------------------------------------------------------------------------------
def test_discovery_is_public_and_names_the_endpoints(client):
    anon = {"Authorization": ""}
    meta = client.get("/.well-known/databricks-config", headers=anon).json()
    assert meta["oidc_endpoint"] == "http://testserver/oidc"
    doc = client.get("/oidc/.well-known/oauth-authorization-server", headers=anon).json()
    assert doc["token_endpoint"] == "http://testserver/oidc/v1/token"
    assert doc["authorization_endpoint"] == "http://testserver/oidc/v1/authorize"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert {"client_credentials", "authorization_code", "refresh_token"} <= set(doc["grant_types_supported"])
    keys = client.get(doc["jwks_uri"].removeprefix("http://testserver"), headers=anon).json()["keys"]
    assert keys and all(k["kty"] == "RSA" and "d" not in k for k in keys)


# -- M2M -------------------------------------------------------------------------------------
def test_secret_shown_once_stored_hashed_and_a_token_acts_as_the_service_principal(client, caplog):
    caplog.set_level(logging.DEBUG)
    sp = _sp(client)
    made = _secret(client, sp)
    assert made["secret"].startswith("dose") and made["status"] == "ACTIVE"
    listed = client.get(_secrets_path(sp)).json()["secrets"]
    assert [s["id"] for s in listed] == [made["id"]] and "secret" not in listed[0]
    (row,) = _rows(client, oauth_secrets_t)
    assert row.hash == hashlib.sha256(made["secret"].encode()).hexdigest()

    r = _m2m(client, sp["applicationId"], made["secret"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and "refresh_token" not in body
    me = client.get(SCIM + "/Me", headers=_bearer(body["access_token"]))
    assert me.status_code == 200 and me.json()["userName"] == sp["applicationId"], me.text
    # The secret also works as form fields; a service principal is no admin.
    r = client.post(TOKEN, data={"grant_type": "client_credentials", "client_id": sp["applicationId"],
                                 "client_secret": made["secret"]}, headers={"Authorization": ""})
    assert r.status_code == 200, r.text
    denied = client.get(_secrets_path(_sp(client, "other")), headers=_bearer(body["access_token"]))
    assert denied.status_code == 403 and denied.json()["error_code"] == "PERMISSION_DENIED"
    assert made["secret"] not in caplog.text and body["access_token"] not in caplog.text


@pytest.mark.parametrize("case", ["wrong secret", "unknown client", "other sp's secret", "no credentials"])
def test_bad_client_credentials_are_invalid_client(client, caplog, case):
    caplog.set_level(logging.DEBUG)
    sp, other = _sp(client, "a"), _sp(client, "b")
    good, others = _secret(client, sp)["secret"], _secret(client, other)["secret"]
    cid, secret = {"wrong secret": (sp["applicationId"], good[:-1] + ("1" if good.endswith("0") else "0")),
                   "unknown client": ("no-such-client", good),
                   "other sp's secret": (sp["applicationId"], others),
                   "no credentials": ("", "")}[case]
    headers = _basic(cid, secret) if cid else {"Authorization": ""}
    r = client.post(TOKEN, data={"grant_type": "client_credentials"}, headers=headers)
    _oauth_error(r, 401, "invalid_client")
    assert ("www-authenticate" in r.headers) == bool(cid)       # answered when Basic was tried
    assert not secret or (secret not in r.text and secret not in caplog.text)


def test_deleted_or_expired_secret_refuses_new_and_issued_tokens(client):
    sp = _sp(client)
    made = _secret(client, sp)
    tok = _m2m(client, sp["applicationId"], made["secret"]).json()["access_token"]
    assert client.get(SCIM + "/Me", headers=_bearer(tok)).status_code == 200      # now cached
    assert client.delete(f"{_secrets_path(sp)}/{made['id']}").status_code == 200
    _oauth_error(_m2m(client, sp["applicationId"], made["secret"]), 401, "invalid_client")
    r = client.get(SCIM + "/Me", headers=_bearer(tok))
    assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHENTICATED"

    short = _secret(client, sp, lifetime="1")
    deadline = time.monotonic() + 5
    while _m2m(client, sp["applicationId"], short["secret"]).status_code == 200:
        assert time.monotonic() < deadline, "the secret did not expire"
        time.sleep(0.1)
    _oauth_error(_m2m(client, sp["applicationId"], short["secret"]), 401, "invalid_client")
    assert client.get(_secrets_path(sp)).json()["secrets"][0]["status"] == "EXPIRED"


def test_a_deleted_service_principal_loses_its_tokens_and_secrets(client):
    sp = _sp(client)
    made = _secret(client, sp)
    tok = _m2m(client, sp["applicationId"], made["secret"]).json()["access_token"]
    assert client.get(SCIM + "/Me", headers=_bearer(tok)).status_code == 200
    assert client.delete(f"{SCIM}/ServicePrincipals/{sp['id']}").status_code == 200
    assert client.get(SCIM + "/Me", headers=_bearer(tok)).status_code == 401
    _oauth_error(_m2m(client, sp["applicationId"], made["secret"]), 401, "invalid_client")
    assert _rows(client, oauth_secrets_t) == []


def test_secrets_only_for_admins_and_the_service_principal_itself(client):
    sp = _sp(client)
    user_tok = client.post("/api/2.0/token-management/on-behalf-of/tokens",
                           json={"user_name": "eve@example.com"}).json()["token_value"]
    r = client.post(_secrets_path(sp), json={}, headers=_bearer(user_tok))
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
    own = _m2m(client, sp["applicationId"], _secret(client, sp)["secret"]).json()["access_token"]
    assert client.post(_secrets_path(sp), json={}, headers=_bearer(own)).status_code == 200
    r = client.get("/api/2.0/accounts/servicePrincipals/404/credentials/secrets")
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.parametrize("body, field", [({"lifetime": "soon"}, "lifetime"), ({"lifetime": 60}, "lifetime"),
                                         ({"lifetime": "0"}, "lifetime"), ({"scopes": ["a b"]}, "scopes")])
def test_bad_secret_bodies_are_400s_naming_the_field(client, body, field):
    sp = _sp(client)
    r = client.post(_secrets_path(sp), json=body)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", r.text
    assert field in r.json()["message"]
    assert client.get(_secrets_path(sp)).json()["secrets"] == []


def test_secret_scopes_bound_the_token(client):
    sp = _sp(client)
    made = _secret(client, sp, scopes=["sql"])
    _oauth_error(_m2m(client, sp["applicationId"], made["secret"]), 400, "invalid_scope")
    assert _m2m(client, sp["applicationId"], made["secret"], scope="sql").status_code == 200


# -- JWTs as API credentials -----------------------------------------------------------------
def test_tampered_expired_and_foreign_jwts_are_refused(client):
    sp = _sp(client)
    tok = _m2m(client, sp["applicationId"], _secret(client, sp)["secret"]).json()["access_token"]
    head, payload, sig = tok.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged = base64.urlsafe_b64encode(json.dumps({**claims, "sub": "admin", "ladle_kind": "user"})
                                      .encode()).decode().rstrip("=")
    keys = client.app.app.state.signing_keys
    expired = keys.issue(claims, ttl_s=-10)
    foreign = jwt.encode({**claims}, "not-our-key-" + "x" * 32, algorithm="HS256",
                         headers={"kid": jwt.get_unverified_header(tok)["kid"]})
    for bad in (f"{head}.{forged}.{sig}", f"{head}.{payload}.{sig[:-4]}AAAA", expired, foreign):
        r = client.get(SCIM + "/Me", headers=_bearer(bad))
        assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHENTICATED", r.text


# -- U2M: authorization code + PKCE ------------------------------------------------------------
def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def _authorize_params(challenge: str, **over) -> dict[str, str]:
    return {"response_type": "code", "client_id": "databricks-cli", "redirect_uri": REDIRECT,
            "scope": "all-apis offline_access", "state": "st-1", "code_challenge": challenge,
            "code_challenge_method": "S256", **over}


def _sign_in(client, challenge: str, token: str, **over):
    params = _authorize_params(challenge, **over)
    page = client.get("/oidc/v1/authorize", params=params, headers={"Authorization": ""})
    assert page.status_code == 200 and 'name="token"' in page.text, page.text
    return client.post("/oidc/v1/authorize", data={**params, "token": token},
                       headers={"Authorization": ""}, follow_redirects=False)


def _code(client, challenge: str, token: str, **over) -> str:
    r = _sign_in(client, challenge, token, **over)
    assert r.status_code == 302, r.text
    loc = urlsplit(r.headers["location"])
    assert f"{loc.scheme}://{loc.netloc}" == REDIRECT
    q = parse_qs(loc.query)
    assert q["state"] == ["st-1"]
    return q["code"][0]


def _exchange(client, code: str, verifier: str, **over):
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": REDIRECT, "client_id": "databricks-cli", **over}
    return client.post(TOKEN, data=form, headers={"Authorization": ""})


def test_authorization_code_with_pkce_then_refresh_rotates(client):
    from tests.integration.conftest import ADMIN

    verifier, challenge = _pkce()
    r = _exchange(client, _code(client, challenge, ADMIN), verifier)
    assert r.status_code == 200, r.text
    first = r.json()
    me = client.get(SCIM + "/Me", headers=_bearer(first["access_token"])).json()
    assert me["userName"] == "admin"
    assert all(not row.hash.startswith(first["refresh_token"][:8]) for row in _rows(client, oauth_grants_t))

    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": "databricks-cli"}
    r = client.post(TOKEN, data=refresh, headers={"Authorization": ""})
    assert r.status_code == 200, r.text
    assert r.json()["refresh_token"] != first["refresh_token"]
    _oauth_error(client.post(TOKEN, data=refresh, headers={"Authorization": ""}), 400, "invalid_grant")


@pytest.mark.parametrize("case", ["reused code", "expired code", "wrong verifier", "wrong redirect",
                                  "other client", "missing verifier"])
def test_bad_code_exchanges_are_invalid_grant(client, monkeypatch, case):
    from ladle.control import oauth_grants
    from tests.integration.conftest import ADMIN

    if case == "expired code":
        monkeypatch.setattr(oauth_grants, "CODE_TTL_S", -1)
    verifier, challenge = _pkce()
    code = _code(client, challenge, ADMIN)
    if case == "expired code":
        r = _exchange(client, code, verifier)
    elif case == "reused code":
        assert _exchange(client, code, verifier).status_code == 200
        r = _exchange(client, code, verifier)
    elif case == "wrong verifier":
        r = _exchange(client, code, _pkce()[0])
    elif case == "wrong redirect":
        r = _exchange(client, code, verifier, redirect_uri="http://localhost:9999")
    elif case == "other client":
        r = _exchange(client, code, verifier, client_id="someone-else")
    else:
        r = _exchange(client, code, "")
    _oauth_error(r, 400, "invalid_request" if case == "missing verifier" else "invalid_grant")
    if case in ("wrong verifier", "wrong redirect", "other client"):   # a refused code is spent
        _oauth_error(_exchange(client, code, verifier), 400, "invalid_grant")


@pytest.mark.parametrize("over, error", [
    ({"redirect_uri": "https://evil.example/cb"}, "invalid_request"),
    ({"redirect_uri": "http://localhost@evil.example/"}, "invalid_request"),
    ({"client_id": "nope"}, "unauthorized_client"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge": ""}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
])
def test_bad_authorization_requests_show_an_error_and_redirect_nowhere(client, over, error):
    params = _authorize_params(_pkce()[1], **over)
    r = client.get("/oidc/v1/authorize", params=params, headers={"Authorization": ""})
    assert r.status_code == 400 and error in r.text and 'name="token"' not in r.text
    from tests.integration.conftest import ADMIN

    r = client.post("/oidc/v1/authorize", data={**params, "token": ADMIN}, headers={"Authorization": ""},
                    follow_redirects=False)
    assert r.status_code == 400 and "location" not in r.headers
    assert _rows(client, oauth_grants_t) == []


def test_a_bad_sign_in_token_shows_the_page_again_without_a_code(client):
    r = _sign_in(client, _pkce()[1], "dapi-not-a-token")
    assert r.status_code == 401 and "Invalid access token" in r.text and "location" not in r.headers
    assert _rows(client, oauth_grants_t) == []


def test_a_deleted_user_cannot_redeem_or_use_tokens(client):
    verifier, challenge = _pkce()
    r = client.post(SCIM + "/Users", json={"userName": "dan@example.com"})
    uid = r.json()["id"]
    pat = client.post("/api/2.0/token-management/on-behalf-of/tokens",
                      json={"user_name": "dan@example.com"}).json()["token_value"]
    tokens = _exchange(client, _code(client, challenge, pat), verifier).json()
    assert client.get(SCIM + "/Me", headers=_bearer(tokens["access_token"])).status_code == 200
    assert client.delete(f"{SCIM}/Users/{uid}").status_code == 200
    assert client.get(SCIM + "/Me", headers=_bearer(tokens["access_token"])).status_code == 401
    r = client.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                                 "client_id": "databricks-cli"}, headers={"Authorization": ""})
    _oauth_error(r, 400, "invalid_grant")


@pytest.mark.parametrize("data, error", [
    ({"grant_type": "password"}, "unsupported_grant_type"),
    ({}, "unsupported_grant_type"),
    ("grant_type=client_credentials&grant_type=refresh_token", "invalid_request"),
])
def test_bad_token_requests_are_oauth_errors(client, data, error):
    kw = {"content": data, "headers": {"Authorization": "", "Content-Type": "application/x-www-form-urlencoded"}} \
        if isinstance(data, str) else {"data": data, "headers": {"Authorization": ""}}
    _oauth_error(client.post(TOKEN, **kw), 400, error)
    r = client.post(TOKEN, json={"grant_type": "client_credentials"}, headers={"Authorization": ""})
    _oauth_error(r, 400, "invalid_request")


def test_servers_sharing_a_database_accept_each_others_codes_tokens_and_secrets(tmp_path):
    from starlette.testclient import TestClient

    from ladle.app import build_app
    from ladle.config import Settings
    from ladle.runtimes.fake import FakeBackend
    from tests.integration.conftest import ADMIN, FakeRegistry

    def server():
        settings = Settings(home=tmp_path, admin_token=ADMIN, reconcile_interval_s=0.05)
        app = build_app(settings, backend=FakeBackend(), registry=FakeRegistry({}))
        return TestClient(app, headers={"Authorization": f"Bearer {ADMIN}"})

    with server() as a, server() as b:
        sp = _sp(a)
        made = _secret(a, sp)
        tok = _m2m(b, sp["applicationId"], made["secret"]).json()["access_token"]
        assert a.get(SCIM + "/Me", headers=_bearer(tok)).json()["userName"] == sp["applicationId"]

        verifier, challenge = _pkce()
        r = _exchange(b, _code(a, challenge, ADMIN), verifier)
        assert r.status_code == 200, r.text
        refresh = {"grant_type": "refresh_token", "refresh_token": r.json()["refresh_token"],
                   "client_id": "databricks-cli"}
        assert a.post(TOKEN, data=refresh, headers={"Authorization": ""}).status_code == 200
        _oauth_error(b.post(TOKEN, data=refresh, headers={"Authorization": ""}), 400, "invalid_grant")


def test_a_token_exchanged_from_a_personal_token_dies_with_it(client):
    made = client.post("/api/2.0/token-management/on-behalf-of/tokens", json={"user_name": "pam@example.com"})
    tid = made.json()["token_info"]["token_id"]
    keys = client.app.app.state.signing_keys
    tok = keys.issue({"sub": "pam@example.com", "ladle_kind": "user", "scope": "all-apis", "ladle_pat": tid}, 60)
    assert client.get(SCIM + "/Me", headers=_bearer(tok)).status_code == 200       # now cached
    assert client.delete(f"/api/2.0/token-management/tokens/{tid}").status_code == 200
    r = client.get(SCIM + "/Me", headers=_bearer(tok))
    assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHENTICATED"
