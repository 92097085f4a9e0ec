"""A Ray replica's fetch token: minted for one model version, it authenticates to a principal
that reads that version's registry entry and the files under its artifact path, with GETs
only, and nothing else (not another version, not a path that steps outside, not a write)."""

from __future__ import annotations

import asyncio
import time

import pytest
from cryptography.fernet import Fernet

from ladle.control.oauth_auth import Authenticator
from ladle.control.oauth_keys import SigningKeys
from ladle.control.replica_tokens import ReplicaTokens, artifacts_path
from ladle.control.secrets import SecretStore
from ladle.control.store import Store
from ladle.control.tokens import TokenService
from ladle.gateway.scope import check_scope
from ladle.schemas.errors import ApiError
from ladle.schemas.principal import ModelScope, Principal

FILES = "1/models/m-0123456789abcdef0123456789abcdef/artifacts"
SCOPE = ModelScope("iris", "2", FILES)
REPLICA = Principal("replica of iris version 2", model_scope=SCOPE)


def test_download_uris_map_to_artifact_proxy_paths():
    assert artifacts_path(f"mlflow-artifacts:/{FILES}") == FILES
    assert artifacts_path(f"mlflow-artifacts://host:5000/{FILES}/") == FILES
    assert artifacts_path("s3://bucket/1/abc/artifacts") == ""


@pytest.fixture
def authenticator(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'ladle.db'}")
    sealer = SecretStore(store, tmp_path, Fernet.generate_key().decode())
    keys = SigningKeys(store, sealer.seal, sealer.unseal)
    keys.ensure()
    auth = Authenticator(TokenService(store), keys, store, lambda name: frozenset())
    return auth, keys


def test_a_minted_token_names_one_model_version_and_no_user(authenticator):
    auth, keys = authenticator
    asked = []

    async def download_uri(name, version):
        asked.append((name, version))
        return f"mlflow-artifacts:/{FILES}"

    tokens = ReplicaTokens(keys.issue, download_uri, ttl_s=600)
    token = asyncio.run(tokens("iris", "2"))
    claims = keys.verify(token)
    assert asked == [("iris", "2")] and claims["exp"] - time.time() <= 600
    p = asyncio.run(auth.authenticate(token))
    assert p.model_scope == SCOPE and p.auth_type == "oauth-replica"
    assert not p.is_admin and p.endpoints is None and p.kind == "service_principal"
    # a malformed claim authenticates nobody
    bad = keys.issue({"sub": "replica:x", "ladle_model": {"name": "iris"}}, 60)
    assert asyncio.run(auth.authenticate(bad)) is None


@pytest.mark.parametrize("method, path, query", [
    ("GET", "/api/2.0/mlflow/model-versions/get-download-uri", b"name=iris&version=2"),
    ("GET", "/api/2.0/mlflow/model-versions/get", b"version=2&name=iris"),
    ("GET", "/api/2.0/mlflow/registered-models/get", b"name=iris"),
    ("GET", "/api/2.0/mlflow-artifacts/artifacts", f"path={FILES}".encode()),
    ("GET", "/api/2.0/mlflow-artifacts/artifacts", b"path=" + FILES.replace("/", "%2F").encode()),
    ("GET", f"/api/2.0/mlflow-artifacts/artifacts/{FILES}/MLmodel", b""),
    ("GET", f"/api/2.0/mlflow-artifacts/artifacts/{FILES}/data/model.pkl", b""),
])
def test_the_token_reads_its_version(method, path, query):
    check_scope(REPLICA, method, path, query)


@pytest.mark.parametrize("method, path, query", [
    ("GET", "/api/2.0/mlflow/model-versions/get-download-uri", b"name=iris&version=3"),
    ("GET", "/api/2.0/mlflow/model-versions/get-download-uri", b"name=other&version=2"),
    ("GET", "/api/2.0/mlflow/model-versions/get-download-uri", b"name=iris&version=2&name=other"),
    ("GET", "/api/2.0/mlflow/registered-models/get", b"name=other"),
    ("GET", "/api/2.0/mlflow/registered-models/search", b""),
    ("GET", "/api/2.0/mlflow/model-versions/search", b"filter=name='iris'"),
    ("POST", "/api/2.0/mlflow/model-versions/get-download-uri", b"name=iris&version=2"),
    ("GET", "/api/2.0/mlflow-artifacts/artifacts", b"path=1/models"),
    ("GET", "/api/2.0/mlflow-artifacts/artifacts", f"path={FILES}/../../m-other".encode()),
    ("GET", f"/api/2.0/mlflow-artifacts/artifacts/{FILES}/../../m-other/MLmodel", b""),
    ("GET", f"/api/2.0/mlflow-artifacts/artifacts/{FILES}x/MLmodel", b""),
    ("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{FILES}/MLmodel", b""),
    ("DELETE", f"/api/2.0/mlflow-artifacts/artifacts/{FILES}/MLmodel", b""),
    ("GET", "/api/2.0/serving-endpoints", b""),
    ("POST", "/serving-endpoints/iris/invocations", b""),
    ("GET", "/api/2.0/preview/scim/v2/Me", b""),
])
def test_the_token_reads_nothing_else(method, path, query):
    with pytest.raises(ApiError) as e:
        check_scope(REPLICA, method, path, query)
    assert e.value.error_code == "PERMISSION_DENIED" and "version 2 only" in e.value.message


def test_a_version_without_proxied_files_reads_its_entry_only():
    p = Principal("r", model_scope=ModelScope("iris", "2", ""))
    check_scope(p, "GET", "/api/2.0/mlflow/model-versions/get-download-uri", b"name=iris&version=2")
    with pytest.raises(ApiError):
        check_scope(p, "GET", f"/api/2.0/mlflow-artifacts/artifacts/{FILES}/MLmodel", b"")
