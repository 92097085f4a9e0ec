"""An app run by the real server: uploaded to the workspace and deployed with databricks-sdk,
built with uv, started confined, reached through ladle's proxy at its `url` with the caller's
identity in X-Forwarded-* headers; a deployment whose command exits at once fails with a clear
message while the previous one keeps serving; the app's logs are readable; the app cannot
read ladle's state."""

from __future__ import annotations

import io
import os
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.integration.tiny_app import APP  # noqa: E402

NAME = "g2-proxy-app"
APP_YAML = """\
command: ["python", "app.py"]
env:
  - name: VERSION
    value: "{version}"
  - name: PROBE
    value: "{probe}"
"""


def _upload(w, folder: str, files: dict[str, str]) -> None:
    from databricks.sdk.service.workspace import ImportFormat

    w.workspace.mkdirs(folder)
    for name, text in files.items():
        w.workspace.upload(f"{folder}/{name}", io.BytesIO(text.encode()), format=ImportFormat.AUTO, overwrite=True)


def test_an_app_deployed_with_the_sdk_serves_through_ladle_as_the_caller(server, workspace):
    from databricks.sdk.errors import OperationFailed
    from databricks.sdk.service.apps import App, AppDeployment

    w = workspace
    me = w.current_user.me().user_name
    folder = f"/Workspace/Users/{me}/apps/{NAME}"
    probe = str(server.home / "ladle.db")
    _upload(w, folder, {"app.py": APP, "requirements.txt": "",
                        "app.yaml": APP_YAML.format(version="v1", probe=probe)})
    app = w.apps.create_and_wait(App(name=NAME), timeout=timedelta(minutes=2))
    try:
        w.apps.deploy_and_wait(NAME, AppDeployment(source_code_path=folder), timeout=timedelta(minutes=3))
        app = w.apps.get(NAME)
        assert app.app_status.state.value == "RUNNING" and app.compute_status.state.value == "ACTIVE"
        assert app.url.rstrip("/").endswith(f"/apps/{NAME}")

        auth = {"Authorization": f"Bearer {server.admin_token}"}
        r = httpx.get(app.url.rstrip("/") + "/who?x=1", headers=auth, timeout=30)
        assert r.status_code == 200, r.text
        seen = r.json()
        assert seen["path"] == "/who?x=1" and seen["version"] == "v1"
        assert seen["headers"]["x-forwarded-email"] == me
        assert seen["headers"]["x-forwarded-prefix"] == f"/apps/{NAME}"
        assert "authorization" not in seen["headers"]
        # the access token the app receives acts as the caller on ladle's API
        me_again = httpx.get(server.url + "/api/2.0/preview/scim/v2/Me", timeout=30, headers={
            "Authorization": f"Bearer {seen['headers']['x-forwarded-access-token']}"})
        assert me_again.status_code == 200 and me_again.json()["userName"] == me
        # the app cannot read ladle's database (hidden, or not readable by its user)
        assert seen["home_probe"] in ("FileNotFoundError", "PermissionError", "NotADirectoryError")
        if os.geteuid() == 0:
            assert seen["uid"] != 0

        # no credentials: an API client is told to authenticate, a browser is sent to sign in
        assert httpx.get(app.url, timeout=30).status_code == 401
        r = httpx.get(app.url, headers={"Accept": "text/html"}, timeout=30)
        assert r.status_code == 302 and "/.ladle/sign-in" in r.headers["location"]

        # a command that exits at once: the deployment fails naming it, v1 keeps serving
        _upload(w, folder, {"app.yaml": 'command: ["python", "-c", "raise SystemExit(4)"]\n'})
        with pytest.raises(OperationFailed, match="exited with code 4"):
            w.apps.deploy_and_wait(NAME, AppDeployment(source_code_path=folder), timeout=timedelta(minutes=2))
        r = httpx.get(app.url.rstrip("/") + "/again", headers=auth, timeout=30)
        assert r.status_code == 200 and r.json()["version"] == "v1"

        logs = httpx.get(f"{server.url}/api/2.0/apps/{NAME}/logs?tail_lines=500", headers=auth, timeout=30)
        assert logs.status_code == 200
        text = logs.json()["logs"]
        assert "request /who?x=1" in text and "exited with code 4" in text
    finally:
        w.apps.delete(NAME)
    r = httpx.get(app.url, headers={"Authorization": f"Bearer {server.admin_token}"}, timeout=30)
    assert r.status_code == 404
