"""`ladle apps manifest`, `ladle apps init` (the files it writes, its flags and --set errors)
and how `ladle apps run-local` builds the app's environment."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
import yaml

try:
    from .cli_fakes import TOKEN, base_env, run
except ImportError:  # tests/unit is not a package
    from cli_fakes import TOKEN, base_env, run

from ladle.cli.apps_run_local import app_env, command_of

HOST = "http://127.0.0.1:1"
INIT = ["init", "--name", "my-app", "--features", "serving", "--set", "serving.serving-endpoint.name=churn",
        "--run", "none"]


def run_apps(args: list[str], tmp_path: Path, **env: str | None):
    from ladle.cli.apps import apps

    merged = base_env(tmp_path, DATABRICKS_HOST=HOST, DATABRICKS_TOKEN=TOKEN)
    merged.update(env)
    return run(apps, args, merged)


def test_manifest_lists_the_serving_plugin(tmp_path: Path) -> None:
    result = run_apps(["manifest"], tmp_path, DATABRICKS_HOST=None, DATABRICKS_TOKEN=None)
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["template"]["name"] == "python"
    (res,) = doc["plugins"]["serving"]["resources"]["required"]
    assert (res["type"], res["resourceKey"], res["permission"]) == ("serving_endpoint", "serving-endpoint", "CAN_QUERY")
    assert res["fields"]["name"]["env"] == "DATABRICKS_SERVING_ENDPOINT_NAME"
    assert doc["plugins"]["server"]["requiredByTemplate"] is True
    bad = run_apps(["manifest", "--template", "nodejs"], tmp_path)
    assert bad.exit_code == 1 and "unknown template 'nodejs'; available: python" in bad.stderr


def test_init_writes_the_project(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_apps([*INIT, "--output-dir", str(out), "--description", "Churn scores"], tmp_path)
    assert result.exit_code == 0, result.stderr
    project = out / "my-app"
    assert sorted(p.name for p in project.iterdir()) == [
        ".env", ".gitignore", "app.py", "app.yaml", "databricks.yml", "requirements.txt"]
    bundle = yaml.safe_load((project / "databricks.yml").read_text())
    assert bundle["bundle"] == {"name": "my-app"}
    assert bundle["variables"] == {"serving_endpoint_name": {"description": "Serving endpoint name"}}
    the_app = bundle["resources"]["apps"]["app"]
    assert the_app["name"] == "my-app" and the_app["source_code_path"] == "./"
    assert the_app["description"] == "Churn scores"
    assert the_app["resources"] == [{"name": "serving-endpoint", "serving_endpoint": {
        "name": "${var.serving_endpoint_name}", "permission": "CAN_QUERY"}}]
    assert bundle["targets"] == {"default": {"default": True, "workspace": {"host": HOST},
                                             "variables": {"serving_endpoint_name": "churn"}}}
    spec = yaml.safe_load((project / "app.yaml").read_text())
    assert spec == {"command": ["python", "app.py"],
                    "env": [{"name": "DATABRICKS_SERVING_ENDPOINT_NAME", "valueFrom": "serving-endpoint"}]}
    assert "DATABRICKS_SERVING_ENDPOINT_NAME=churn" in (project / ".env").read_text().splitlines()
    assert ".env" in (project / ".gitignore").read_text().splitlines()
    assert "databricks-sdk" in (project / "requirements.txt").read_text()
    app_py = (project / "app.py").read_text()
    compile(app_py, "app.py", "exec")
    assert "{{project_name}}" not in app_py and 'FastAPI(title="my-app")' in app_py
    assert "Project created successfully" in result.stderr and "Files: 6" in result.stderr


def test_init_without_features_has_no_resources(tmp_path: Path) -> None:
    result = run_apps(["init", "--name", "plain", "--output-dir", str(tmp_path / "o")], tmp_path)
    assert result.exit_code == 0, result.stderr
    bundle = yaml.safe_load((tmp_path / "o" / "plain" / "databricks.yml").read_text())
    assert "variables" not in bundle and "resources" not in bundle["resources"]["apps"]["app"]
    assert yaml.safe_load((tmp_path / "o" / "plain" / "app.yaml").read_text()) == {"command": ["python", "app.py"]}


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "serving.serving-endpoint.id=x"],
     "plugin 'serving' has no resource with key 'serving-endpoint' and field 'id'"),
    (["--set", "serving.endpoint.name=x"], "plugin 'serving' has no resource with key 'endpoint' and field 'name'"),
    (["--set", "serve.serving-endpoint.name=x"],
     "unknown plugin 'serve' in --set 'serve.serving-endpoint.name=x'; available: [server serving]"),
    (["--set", "serving.serving-endpoint=x"], "invalid --set key 'serving.serving-endpoint', expected plugin.resourceKey.field"),
    (["--set", "serving.serving-endpoint.name"], "invalid --set format 'serving.serving-endpoint.name'"),
    ([], "missing required resource 'Serving Endpoint' for selected plugins "
         "(use --set serving.serving-endpoint.name=value)"),
])
def test_bad_set_values_are_named(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_apps(["init", "--name", "my-app", "--features", "serving", *args, "--output-dir", str(tmp_path)],
                      tmp_path)
    assert result.exit_code == 1
    assert message in result.stderr
    assert not (tmp_path / "my-app").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--name", "My_App"], "must start with a letter, use only lowercase letters, numbers, or hyphens"),
    (["--name", "a" * 27], "name too long (max 26 chars)"),
    (["--name", "ok", "--features", "analytics"], "unknown plugin: 'analytics'; available: [server serving]"),
    (["--name", "ok", "--run", "later"], "invalid --run value: 'later' (must be none, dev, or dev-remote)"),
    (["--name", "ok", "--run", "dev", "--skip-install"], "--skip-install cannot be combined with --run"),
    ([], "--name is required in non-interactive mode"),
])
def test_bad_flags(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_apps(["init", *args, "--output-dir", str(tmp_path)], tmp_path)
    assert result.exit_code == 1
    assert message in result.stderr
    assert [p for p in tmp_path.iterdir() if p.is_dir()] == []


def test_init_refuses_an_existing_folder(tmp_path: Path) -> None:
    (tmp_path / "my-app").mkdir()
    (tmp_path / "my-app" / "keep.txt").write_text("mine")
    result = run_apps([*INIT, "--output-dir", str(tmp_path)], tmp_path)
    assert result.exit_code == 1 and "already exists" in result.stderr
    assert [p.name for p in (tmp_path / "my-app").iterdir()] == ["keep.txt"]


def test_init_needs_credentials(tmp_path: Path) -> None:
    result = run_apps([*INIT, "--output-dir", str(tmp_path)], tmp_path, DATABRICKS_HOST=None, DATABRICKS_TOKEN=None)
    assert result.exit_code == 1 and not (tmp_path / "my-app").exists()


def test_run_local_resolves_value_from(tmp_path: Path) -> None:
    spec = {"env": [{"name": "MODE", "value": "x"}, {"name": "EP", "valueFrom": "serving-endpoint"}]}
    (tmp_path / ".env").write_text("EP=from-dotenv\n")
    assert app_env(tmp_path, "app.yaml", spec, {}, {}) == {"MODE": "x", "EP": "from-dotenv"}
    assert app_env(tmp_path, "app.yaml", spec, {}, {"EP": "from-env"})["EP"] == "from-env"
    assert app_env(tmp_path, "app.yaml", spec, {"EP": "flag"}, {"EP": "from-env"})["EP"] == "flag"
    (tmp_path / ".env").unlink()
    with pytest.raises(click.ClickException, match="EP defined in app.yaml with valueFrom property and can't be "
                                                   "resolved locally"):
        app_env(tmp_path, "app.yaml", spec, {}, {})


def test_run_local_command() -> None:
    assert command_of({}, 8000) == ["python", "app.py"]
    assert command_of({"command": ["uvicorn", "app:app", "--port", "$DATABRICKS_APP_PORT"]}, 9) == [
        "uvicorn", "app:app", "--port", "9"]


def test_init_run_dev_prepares_and_runs_the_new_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--run dev`: .venv prepared in the new project, then app.yaml's command run there with the
    endpoint's name from .env and the port from DATABRICKS_APP_PORT (the processes are faked)."""
    from ladle.cli import apps_run_local

    prepared: list[Path] = []
    started: list[tuple[list[str], Path, dict[str, str]]] = []

    def prepare(app_dir: Path) -> Path:
        prepared.append(app_dir)
        return app_dir / ".venv" / "bin"

    class Proc:
        def __init__(self, command: list[str], cwd: Path, env: dict[str, str]) -> None:
            started.append((command, cwd, env))

        def wait(self, timeout: float | None = None) -> int:
            return 0

    monkeypatch.setattr(apps_run_local, "prepare_environment", prepare)
    monkeypatch.setattr(apps_run_local.subprocess, "Popen", Proc)
    result = run_apps([*INIT[:-2], "--run", "dev", "--output-dir", str(tmp_path)], tmp_path,
                      DATABRICKS_APP_PORT="18123")
    assert result.exit_code == 0, result.stderr
    project = (tmp_path / "my-app").resolve()
    assert prepared == [project]
    ((command, cwd, env),) = started
    assert (command, cwd) == (["python", "app.py"], project)
    assert env["DATABRICKS_SERVING_ENDPOINT_NAME"] == "churn"
    assert (env["DATABRICKS_APP_PORT"], env["UVICORN_HOST"]) == ("18123", "127.0.0.1")
    assert env["PATH"].startswith(str(project / ".venv" / "bin"))
    assert env["DATABRICKS_HOST"] == HOST and env["DATABRICKS_TOKEN"] == TOKEN


def test_init_deploy_runs_the_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--deploy`: `ladle bundle deploy` then `ladle bundle run app` in the new project, with the
    profile given to init; a failing step stops there and says how to retry."""
    from ladle.cli import apps_init

    calls: list[tuple[list[str], Path]] = []

    class Done:
        def __init__(self, rc: int) -> None:
            self.returncode = rc

    def fake_run(cmd: list[str], cwd: Path, check: bool) -> Done:
        calls.append((cmd[3:], cwd))
        return Done(0)

    monkeypatch.setattr(apps_init.subprocess, "run", fake_run)
    cfg = tmp_path / "cfg"
    cfg.write_text(f"[dev]\nhost = {HOST}\ntoken = {TOKEN}\n")
    result = run_apps([*INIT, "--deploy", "--output-dir", str(tmp_path), "-p", "dev"], tmp_path,
                      DATABRICKS_HOST=None, DATABRICKS_TOKEN=None, DATABRICKS_CONFIG_FILE=str(cfg))
    assert result.exit_code == 0, result.stderr
    project = (tmp_path / "my-app").resolve()
    assert calls == [(["bundle", "deploy", "--profile", "dev"], project),
                     (["bundle", "run", "app", "--profile", "dev"], project)]
    assert "Deploy complete" in result.stderr

    calls.clear()
    monkeypatch.setattr(apps_init.subprocess, "run", lambda cmd, cwd, check: calls.append(cmd) or Done(1))
    failed = run_apps(["init", "--name", "other", "--deploy", "--output-dir", str(tmp_path)], tmp_path)
    assert failed.exit_code == 0 and len(calls) == 1 and "Deploy failed (exit code 1)" in failed.stderr


def test_run_local_proxy_headers_and_ports(tmp_path: Path) -> None:
    from ladle.cli.apps_local_proxy import identity_headers

    sp = identity_headers({"userName": "c7cc13f8-app", "displayName": "seed-app"})
    assert (sp["X-Forwarded-User"], sp["X-Forwarded-Email"], sp["X-Forwarded-Preferred-Username"]) == (
        "c7cc13f8-app", "c7cc13f8-app", "seed-app")
    same = run_apps(["run-local", "--port", "9000", "--app-port", "9000", "--source-dir", str(tmp_path)], tmp_path)
    assert same.exit_code == 1 and "--port and --app-port must differ" in same.stderr
