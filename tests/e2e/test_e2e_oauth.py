"""OAuth through the real databricks-sdk's own auth code paths, on the session server:
M2M (`WorkspaceClient(host, client_id, client_secret)`: a service principal with an OAuth
secret creates and queries an endpoint under its own permissions; a revoked secret is
refused) and U2M (`auth_type="external-browser"`: the SDK opens the authorize URL with
`BROWSER`, here a script that signs in on ladle's page, and receives the code on its
loopback listener at localhost:8020)."""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import PermissionDenied, Unauthenticated
from databricks.sdk.service.iam import AccessControlRequest, PermissionLevel
from databricks.sdk.service.serving import EndpointCoreConfigInput, ServedEntityInput

from e2e_support import IRIS, client, delete_endpoint

BROWSER_HELPER = Path(__file__).parent / "oauth_browser.py"


@pytest.fixture()
def no_databricks_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No credentials from the environment or a config file: only what a test passes."""
    for k in list(os.environ):
        if k.startswith(("DATABRICKS_", "ARM_", "AZURE_", "GOOGLE_")):
            monkeypatch.delenv(k)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-databrickscfg"))
    return tmp_path


def test_m2m_service_principal_creates_and_queries_under_its_permissions(
        server, workspace, models, sample, no_databricks_env):
    tag = secrets.token_hex(3)
    sp = workspace.service_principals.create(display_name=f"oauth-bot-{tag}")
    made = workspace.service_principal_secrets_proxy.create(sp.id)
    assert made.secret and made.status == "ACTIVE"
    assert [s.id for s in workspace.service_principal_secrets_proxy.list(sp.id)] == [made.id]

    w = WorkspaceClient(host=server.url, client_id=sp.application_id, client_secret=made.secret)
    assert w.config.auth_type == "oauth-m2m"
    assert w.current_user.me().user_name == sp.application_id
    name = f"oauth-m2m-{tag}"
    config = EndpointCoreConfigInput(name=name, served_entities=[ServedEntityInput(
        entity_name=IRIS, entity_version="1", workload_size="Small", scale_to_zero_enabled=False)])
    with pytest.raises(PermissionDenied):      # no access to the model yet
        w.serving_endpoints.create(name, config=config)
    workspace.permissions.update("registered-models", IRIS, access_control_list=[AccessControlRequest(
        service_principal_name=sp.application_id, permission_level=PermissionLevel.CAN_READ)])
    try:
        ep = w.serving_endpoints.create_and_wait(name, config=config, timeout=timedelta(minutes=2))
        assert ep.creator == sp.application_id
        r = w.serving_endpoints.query(name, dataframe_records=sample.to_dict(orient="records"))
        assert len(r.predictions) == len(sample)

        workspace.service_principal_secrets_proxy.delete(sp.id, made.id)
        with pytest.raises(Unauthenticated):     # the token it holds was issued for that secret
            w.serving_endpoints.get(name)
        with pytest.raises(Exception, match="invalid_client"):
            WorkspaceClient(host=server.url, client_id=sp.application_id,
                            client_secret=made.secret).current_user.me()
    finally:
        with client(server) as admin:
            delete_endpoint(admin, name)


def test_u2m_external_browser_signs_in_on_the_sign_in_page(server, workspace, no_databricks_env):
    home = no_databricks_env
    user = f"ursula-{secrets.token_hex(3)}@example.com"
    pat = workspace.api_client.do("POST", "/api/2.0/token-management/on-behalf-of/tokens",
                                  body={"user_name": user, "comment": "oauth e2e"})["token_value"]
    browser = home / "browser"
    log = home / "browser.log"
    # in the background: Python's webbrowser waits for a BROWSER command to exit, and the SDK
    # starts its listener only after that
    browser.write_text(f'#!/bin/sh\n"{sys.executable}" "{BROWSER_HELPER}" "$1" 2>"{log}" &\n')
    browser.chmod(browser.stat().st_mode | stat.S_IXUSR)
    code = ("from databricks.sdk import WorkspaceClient\n"
            f"w = WorkspaceClient(host={server.url!r}, auth_type='external-browser')\n"
            "print(w.current_user.me().user_name, w.config.auth_type)\n")
    env = {**os.environ, "BROWSER": str(browser), "LADLE_SIGNIN_TOKEN": pat}
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:      # the SDK waits for its redirect as long as it takes
        pytest.fail(f"no sign-in; the browser said: {log.read_text() if log.exists() else '-'}")
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == [user, "external-browser"]
    (cached,) = (home / ".config" / "databricks-sdk-py" / "oauth").glob("*.json")
    assert json.loads(cached.read_text())["token"]["refresh_token"]
