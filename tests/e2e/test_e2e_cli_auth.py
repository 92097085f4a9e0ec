"""`ladle configure` and `ladle auth` against the real server, with a temporary HOME: a PAT profile
from stdin, an OAuth login through the sign-in page (BROWSER = tests/e2e/oauth_browser.py), the
token, profiles, describe, env, switch and logout commands, then a ladle command, the Databricks
SDK (`WorkspaceClient(profile=...)`, which runs `ladle auth token`) and an M2M profile."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from e2e_support import SERVER_ARGV

BROWSER_SCRIPT = Path(__file__).with_name("oauth_browser.py")
ME = "/api/2.0/preview/scim/v2/Me"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server) -> dict[str, str]:  # noqa: ANN001
    for name in [k for k in os.environ if k.startswith("DATABRICKS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("LADLE_AUTH_REDIRECT_PORT", "0")
    browser = tmp_path / "browser"  # Python's webbrowser takes BROWSER as one program: wrap the script
    browser.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(BROWSER_SCRIPT))} \"$@\"\n")
    browser.chmod(0o700)
    monkeypatch.setenv("BROWSER", str(browser))
    monkeypatch.setenv("LADLE_SIGNIN_TOKEN", server.admin_token)
    return {**os.environ}


def ladle(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([*SERVER_ARGV, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60)


def ok(p: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert p.returncode == 0, f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p


def test_cli_auth_commands_end_to_end(server, admin, home: dict[str, str], tmp_path: Path) -> None:  # noqa: ANN001
    me = admin.get(ME).json()["userName"]
    cfg = tmp_path / ".databrickscfg"

    ok(ladle(home, "configure", "--host", server.url, "-p", "pat", stdin=server.admin_token + "\n"))
    assert f"host = {server.url}" in cfg.read_text() and oct(cfg.stat().st_mode & 0o777) == "0o600"

    login = ok(ladle(home, "auth", "login", "--host", server.url, "-p", "dev", "--timeout", "40s"))
    assert "Profile dev was successfully saved" in login.stderr and f"{server.url}/oidc/v1/authorize?" in login.stderr
    assert "auth_type = databricks-cli" in cfg.read_text()
    cache = json.loads((tmp_path / ".databricks" / "token-cache.json").read_text())
    assert set(cache["tokens"]) == {"dev", server.url} and cache["tokens"]["dev"]["refresh_token"]

    token = json.loads(ok(ladle(home, "auth", "token", "-p", "dev")).stdout)
    assert set(token) == {"access_token", "token_type", "expiry"}
    assert admin.get(ME, headers={"Authorization": f"Bearer {token['access_token']}"}).json()["userName"] == me
    forced = json.loads(ok(ladle(home, "auth", "token", "--host", server.url, "--force-refresh")).stdout)
    assert forced["access_token"] != token["access_token"]
    rotated = json.loads((tmp_path / ".databricks" / "token-cache.json").read_text())["tokens"]["dev"]
    assert rotated["refresh_token"] != cache["tokens"]["dev"]["refresh_token"]

    profiles = json.loads(ok(ladle(home, "auth", "profiles", "-o", "json")).stdout)["profiles"]
    assert [(p["name"], p["auth_type"], p["valid"]) for p in profiles] == [
        ("pat", "pat", True), ("dev", "databricks-cli", True)]

    described = ok(ladle(home, "auth", "describe", "-p", "dev")).stdout
    assert f"User: {me}\nAuthenticated with: databricks-cli\n" in described
    assert f"  ✓ auth_type: databricks-cli (from {cfg} config file)" in described
    env = json.loads(ok(ladle(home, "auth", "env", "-p", "dev")).stdout)["env"]
    assert env["DATABRICKS_HOST"] == server.url and env["DATABRICKS_AUTH_TYPE"] == "databricks-cli"

    assert 'Default profile set to "dev".' in ok(ladle(home, "auth", "switch", "-p", "dev")).stderr
    assert json.loads(ok(ladle(home, "serving-endpoints", "list")).stdout) is not None  # the default profile: dev

    from databricks.sdk import WorkspaceClient

    w = WorkspaceClient(profile="dev")
    assert w.config.auth_type == "databricks-cli" and w.current_user.me().user_name == me

    out = ok(ladle(home, "auth", "logout", "-p", "dev", "--auto-approve"))
    assert 'Logged out of profile "dev"' in out.stderr
    after = ladle(home, "serving-endpoints", "list")
    assert after.returncode == 1 and "databricks OAuth is not configured for this host" in after.stderr


def test_cli_with_an_m2m_profile(server, admin, home: dict[str, str], tmp_path: Path) -> None:  # noqa: ANN001
    sp = admin.post("/api/2.0/preview/scim/v2/ServicePrincipals", json={"displayName": "cli-m2m"})
    assert sp.status_code in (200, 201), sp.text
    sp = sp.json()
    try:
        secret = admin.post(f"/api/2.0/accounts/servicePrincipals/{sp['id']}/credentials/secrets", json={})
        assert secret.status_code == 200, secret.text
        (tmp_path / ".databrickscfg").write_text(
            f"[m2m]\nhost = {server.url}\nclient_id = {sp['applicationId']}\nclient_secret = {secret.json()['secret']}\n")
        described = ok(ladle(home, "auth", "describe", "-p", "m2m")).stdout
        assert f"User: {sp['applicationId']}\nAuthenticated with: oauth-m2m\n" in described
        assert "  ✓ client_secret: ******** (from" in described
        ok(ladle(home, "-p", "m2m", "serving-endpoints", "list"))
        refused = ladle(home, "auth", "token", "-p", "m2m")
        assert refused.returncode == 1 and "uses M2M authentication" in refused.stderr
    finally:
        admin.delete(f"/api/2.0/preview/scim/v2/ServicePrincipals/{sp['id']}")
