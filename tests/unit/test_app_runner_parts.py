"""The app runner's and proxy's small rules, without processes: what an app's environment
holds (and never holds), where a sign-in may send a browser, how an app's redirects and the
requirements file are treated."""

from __future__ import annotations

from pathlib import Path

import pytest

from ladle.api.app_proxy import _inside
from ladle.api.app_sign_in import safe_next, sign_in_url
from ladle.runtimes.app_env import EnvError, requirements_digest
from ladle.runtimes.app_process import app_env
from ladle.schemas.apps import AppLaunch


def test_an_apps_environment_holds_its_launch_env_and_port_and_nothing_of_the_servers(monkeypatch, tmp_path):
    monkeypatch.setenv("LADLE_ADMIN_TOKEN", "server-secret")
    monkeypatch.setenv("LADLE_SECRET_KEY", "server-key")
    monkeypatch.setenv("TZ", "UTC")
    launch = AppLaunch("a", "d1", tmp_path, ["python", "app.py"],
                       {"DATABRICKS_CLIENT_SECRET": "app-secret", "PATH": "/evil", "X": "1"})
    env = app_env(launch, tmp_path / "venv", tmp_path / "scratch", 4321)
    assert "LADLE_ADMIN_TOKEN" not in env and "LADLE_SECRET_KEY" not in env and env["TZ"] == "UTC"
    assert env["DATABRICKS_CLIENT_SECRET"] == "app-secret" and env["X"] == "1"
    assert env["DATABRICKS_APP_PORT"] == env["UVICORN_PORT"] == env["STREAMLIT_SERVER_PORT"] == "4321"
    assert env["FLASK_RUN_HOST"] == env["UVICORN_HOST"] == "127.0.0.1"
    assert env["PATH"].startswith(str(tmp_path / "venv" / "bin") + ":")
    assert env["HOME"] == str(tmp_path / "scratch" / "home") and env["TMPDIR"] == str(tmp_path / "scratch" / "tmp")


@pytest.mark.parametrize("wanted, went", [
    ("/apps/a/page?x=1", "/apps/a/page?x=1"),
    ("/apps/a/", "/apps/a/"),
    ("/apps/b/", "/apps/a/"),              # another app
    ("https://evil.test/", "/apps/a/"),
    ("/apps/a//evil.test", "/apps/a/"),
    ("/apps/a/\\evil", "/apps/a/"),
    ("/apps/a/\r\nSet-Cookie:x", "/apps/a/"),
    (None, "/apps/a/"),
])
def test_a_sign_in_sends_the_browser_back_inside_the_app_only(wanted, went):
    assert safe_next("a", wanted) == went


def test_the_sign_in_url_carries_where_to_go_back():
    assert sign_in_url("a", "/apps/a/p?x=1") == "/apps/a/.ladle/sign-in?next=%2Fapps%2Fa%2Fp%3Fx%3D1"


@pytest.mark.parametrize("location, kept", [
    ("/login", "/apps/a/login"),
    ("/apps/a/login", "/apps/a/login"),
    ("login", "login"),
    ("//other.test/x", "//other.test/x"),
    ("https://other.test/x", "https://other.test/x"),
])
def test_an_apps_redirect_stays_under_its_prefix(location, kept):
    assert _inside("/apps/a", location) == kept


def test_requirements_txt_is_required_and_its_contents_key_the_environment(tmp_path: Path):
    with pytest.raises(EnvError, match="requirements.txt"):
        requirements_digest(tmp_path)
    (tmp_path / "requirements.txt").write_text("")
    empty = requirements_digest(tmp_path)
    (tmp_path / "requirements.txt").write_text("httpx\n")
    assert requirements_digest(tmp_path) != empty
