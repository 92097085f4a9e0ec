"""A Ray replica's model fetch token against the whole app in process: it authenticates, but
every route outside its model version's reads refuses it (the control plane, invocations,
another model), and it cannot be exchanged for another token or sign in anywhere."""

from __future__ import annotations

from ladle.control.oauth_keys import SigningKeys
from ladle.control.secrets import SecretStore
from ladle.control.store import Store
from tests.integration.conftest import create

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def fetch_token(home, name: str = "m", version: str = "1") -> str:
    """A token as the reconciler owner mints it (the same keys, read from the database)."""
    store = Store(f"sqlite:///{home / 'ladle.db'}")
    sealer = SecretStore(store, home)
    keys = SigningKeys(store, sealer.seal, sealer.unseal)
    keys.reload()
    return keys.issue({"sub": f"replica:{name}/{version}", "ladle_model": {
        "name": name, "version": version, "artifacts": "1/models/m-0123/artifacts"}}, 60)


def test_a_fetch_token_reads_its_model_version_and_nothing_else(client, tmp_path):
    ep = create(client, "ep", route_optimized=True)
    token = fetch_token(tmp_path)
    as_replica = {"Authorization": f"Bearer {token}"}
    for method, path in (("GET", "/api/2.0/serving-endpoints"), ("GET", "/api/2.0/serving-endpoints/ep"),
                         ("POST", "/serving-endpoints/ep/invocations"),
                         ("GET", "/api/2.0/mlflow/registered-models/get?name=other"),
                         ("GET", "/api/2.0/mlflow/model-versions/get-download-uri?name=m&version=2"),
                         ("DELETE", "/api/2.0/mlflow/registered-models/delete?name=m"),
                         ("GET", "/api/2.0/preview/scim/v2/Me")):
        r = client.request(method, path, headers=as_replica, json={} if method == "POST" else None)
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error_code"] == "PERMISSION_DENIED" and "version 1 only" in r.json()["message"]
    details = ep["data_plane_info"]["query_info"]["authorization_details"]
    r = client.post("/oidc/v1/token", data={"grant_type": JWT_BEARER, "assertion": token,
                                            "authorization_details": details}, headers={"Authorization": ""})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    assert "cannot be exchanged" in r.json()["error_description"]
