"""`ladle apps` API commands against a recording HTTP server: what they send, what they print,
how they wait, and the local-folder upload of `deploy --source-code-path`."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

try:
    from .cli_fakes import TOKEN, RecordingServer, Reply, _recording_server, base_env, run, server  # noqa: F401
except ImportError:  # tests/unit is not a package
    from cli_fakes import TOKEN, RecordingServer, Reply, _recording_server, base_env, run, server  # noqa: F401

from ladle.cli import apps_wait
from ladle.cli.apps_logs import new_lines
from ladle.cli.apps_upload import local_files

APPS = "/api/2.0/apps"


@pytest.fixture(autouse=True)
def _fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(apps_wait, "POLL_INTERVAL_S", 0.01)


def run_apps(args: list[str], server: RecordingServer, tmp_path: Path, **env: str | None):
    from ladle.cli.apps import apps

    merged = base_env(tmp_path, DATABRICKS_HOST=server.url, DATABRICKS_TOKEN=TOKEN)
    merged.update(env)
    return run(apps, args, merged)


def app(name: str = "my-app", compute: str = "ACTIVE", deployment: str | None = "SUCCEEDED") -> dict:
    body = {"name": name, "url": f"http://h/apps/{name}/", "compute_status": {"state": compute, "message": "ok"},
            "app_status": {"state": "RUNNING"}, "service_principal_client_id": "cid"}
    if deployment:
        body["active_deployment"] = {"deployment_id": "d1", "status": {"state": deployment}}
    return body


def test_create_waits_for_active_and_prints_the_app(server: RecordingServer, tmp_path: Path) -> None:
    server.on("POST", APPS, Reply(body=app(compute="STARTING", deployment=None)))
    server.on("GET", f"{APPS}/my-app", Reply(body=app(compute="STARTING")), Reply(body=app()))
    result = run_apps(["create", "my-app", "--description", "d"], server, tmp_path)
    assert result.exit_code == 0, result.stderr
    assert server.calls("POST")[0].json == {"name": "my-app", "description": "d"}
    assert server.calls("POST")[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(result.stdout)["compute_status"]["state"] == "ACTIVE"
    assert len(server.calls("GET")) == 2


def test_create_json_and_no_compute(server: RecordingServer, tmp_path: Path) -> None:
    server.on("POST", f"{APPS}?no_compute=true", Reply(body=app(compute="STOPPED", deployment=None)))
    body = {"name": "a1", "resources": [{"name": "serving-endpoint",
                                         "serving_endpoint": {"name": "ep", "permission": "CAN_QUERY"}}]}
    result = run_apps(["create", "--json", json.dumps(body), "--no-compute"], server, tmp_path)
    assert result.exit_code == 0, result.stderr
    assert server.calls("POST")[0].json == body
    assert server.calls("GET") == []
    both = run_apps(["create", "x", "--json", "{}"], server, tmp_path)
    assert both.exit_code == 2 and "no positional arguments are allowed" in both.stderr


def test_create_fails_when_compute_errors(server: RecordingServer, tmp_path: Path) -> None:
    server.on("POST", APPS, Reply(body=app(compute="STARTING")))
    server.on("GET", f"{APPS}/my-app", Reply(body={"name": "my-app", "compute_status": {
        "state": "ERROR", "message": "app.yaml: valueFrom 'nope' names no resource"}}))
    result = run_apps(["create", "my-app"], server, tmp_path)
    assert result.exit_code == 1
    assert "failed to reach ACTIVE, got ERROR: app.yaml: valueFrom 'nope' names no resource" in result.stderr


def test_list_prints_a_table_or_json(server: RecordingServer, tmp_path: Path) -> None:
    server.on("GET", APPS, Reply(body={"apps": [app("a1")], "next_page_token": "p2"}))
    server.on("GET", f"{APPS}?page_token=p2", Reply(body={"apps": [app("a2", compute="STOPPED", deployment=None)]}))
    result = run_apps(["list"], server, tmp_path)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["Name", "Url", "ComputeStatus", "DeploymentStatus"]
    assert lines[1].split() == ["a1", "http://h/apps/a1/", "ACTIVE", "SUCCEEDED"]
    assert lines[2].split() == ["a2", "http://h/apps/a2/", "STOPPED"]
    as_json = run_apps(["list", "-o", "json", "--limit", "1"], server, tmp_path)
    assert [a["name"] for a in json.loads(as_json.stdout)] == ["a1"]


def test_get_update_delete_and_deployments(server: RecordingServer, tmp_path: Path) -> None:
    server.on("GET", f"{APPS}/a1", Reply(body=app("a1")))
    server.on("PATCH", f"{APPS}/a1", Reply(body=app("a1")))
    server.on("DELETE", f"{APPS}/a1", Reply(body={}))
    server.on("GET", f"{APPS}/a1/deployments", Reply(body={"app_deployments": [
        {"deployment_id": "d1", "status": {"state": "SUCCEEDED"}, "create_time": "2026-12-05T01:00:00Z"}]}))
    server.on("GET", f"{APPS}/a1/deployments/d1", Reply(body={"deployment_id": "d1"}))
    assert json.loads(run_apps(["get", "a1"], server, tmp_path).stdout)["name"] == "a1"
    assert run_apps(["update", "a1", "--description", "new"], server, tmp_path).exit_code == 0
    assert server.calls("PATCH")[0].json == {"name": "a1", "description": "new"}
    assert run_apps(["delete", "a1"], server, tmp_path).exit_code == 0
    table = run_apps(["list-deployments", "a1"], server, tmp_path).stdout.splitlines()
    assert table[1].split() == ["d1", "SUCCEEDED", "2026-12-05T01:00:00Z"]
    assert json.loads(run_apps(["get-deployment", "a1", "d1"], server, tmp_path).stdout) == {"deployment_id": "d1"}


def test_start_and_stop_wait(server: RecordingServer, tmp_path: Path) -> None:
    server.on("POST", f"{APPS}/a1/stop", Reply(body=app("a1", compute="STOPPING")))
    server.on("GET", f"{APPS}/a1", Reply(body=app("a1", compute="STOPPING")), Reply(body=app("a1", compute="STOPPED")))
    result = run_apps(["stop", "a1"], server, tmp_path)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["compute_status"]["state"] == "STOPPED"
    server.on("POST", f"{APPS}/a1/start", Reply(body=app("a1", compute="STARTING")))
    assert run_apps(["start", "a1", "--no-wait"], server, tmp_path).exit_code == 0


def _app_folder(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "static").mkdir(parents=True)
    (src / "app.py").write_text("print('hi')\n")
    (src / "static" / "x.css").write_text("body{}")
    (src / ".env").write_text("SECRET=1\n")
    (src / ".venv" / "bin").mkdir(parents=True)
    (src / ".venv" / "bin" / "python").write_text("")
    (src / "notes.log").write_text("local")
    (src / ".gitignore").write_text("*.log\n")
    return src


def test_upload_leaves_out_ignored_files(tmp_path: Path) -> None:
    assert [p.as_posix() for p in local_files(_app_folder(tmp_path))] == [".gitignore", "app.py", "static/x.css"]


def test_deploy_uploads_a_local_folder_then_waits(server: RecordingServer, tmp_path: Path) -> None:
    src = _app_folder(tmp_path)
    remote = "/Workspace/Users/alice@example.com/apps/a1"
    server.on("GET", "/api/2.0/preview/scim/v2/Me", Reply(body={"userName": "alice@example.com"}))
    server.on("POST", "/api/2.0/workspace/delete", Reply(404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "x"}))
    server.on("POST", "/api/2.0/workspace/mkdirs", Reply(body={}))
    server.on("POST", "/api/2.0/workspace/import", Reply(body={}))
    server.on("POST", f"{APPS}/a1/deployments", Reply(body={"deployment_id": "d9", "status": {"state": "IN_PROGRESS"}}))
    server.on("GET", f"{APPS}/a1/deployments/d9", Reply(body={"deployment_id": "d9", "status": {
        "state": "IN_PROGRESS", "message": "Building"}}), Reply(body={"deployment_id": "d9", "status": {
            "state": "SUCCEEDED", "message": "App started successfully"}}))
    result = run_apps(["deploy", "a1", "--source-code-path", str(src)], server, tmp_path)
    assert result.exit_code == 0, result.stderr
    imports = {c.json["path"]: base64.b64decode(c.json["content"]) for c in server.calls("POST", "/api/2.0/workspace/import")}
    assert imports == {f"{remote}/.gitignore": b"*.log\n", f"{remote}/app.py": b"print('hi')\n",
                       f"{remote}/static/x.css": b"body{}"}
    assert server.calls("POST", f"{APPS}/a1/deployments")[0].json == {"source_code_path": remote}
    assert "Building" in result.stderr and json.loads(result.stdout)["status"]["state"] == "SUCCEEDED"


def test_deploy_failure_points_at_the_logs(server: RecordingServer, tmp_path: Path) -> None:
    server.on("POST", f"{APPS}/a1/deployments", Reply(body={"deployment_id": "d1"}))
    server.on("GET", f"{APPS}/a1/deployments/d1", Reply(body={"deployment_id": "d1", "status": {
        "state": "FAILED", "message": "requirements.txt: the app's source has no requirements.txt"}}))
    result = run_apps(["deploy", "a1", "--source-code-path", "/Workspace/Users/a/apps/a1", "-p", "dev"],
                      server, tmp_path, DATABRICKS_CONFIG_FILE=str(_cfg(tmp_path, server)))
    assert result.exit_code == 1
    assert "failed to reach SUCCEEDED, got FAILED: requirements.txt" in result.stderr
    assert "ladle apps logs a1 --tail-lines 100 --profile dev" in result.stderr
    assert server.calls("POST", f"{APPS}/a1/deployments")[0].json == {"source_code_path": "/Workspace/Users/a/apps/a1"}


def _cfg(tmp_path: Path, server: RecordingServer) -> Path:
    cfg = tmp_path / "cfg"
    cfg.write_text(f"[dev]\nhost = {server.url}\ntoken = {TOKEN}\n")
    return cfg


def test_deploy_rejects_a_missing_relative_folder(server: RecordingServer, tmp_path: Path) -> None:
    result = run_apps(["deploy", "a1", "--source-code-path", "no/such/dir"], server, tmp_path)
    assert result.exit_code == 1 and "neither a local folder nor a workspace path" in result.stderr
    assert server.calls() == []


def test_logs_tail_search_and_output_file(server: RecordingServer, tmp_path: Path) -> None:
    server.on("GET", f"{APPS}/a1/logs?tail_lines=5", Reply(body={"logs": "boot\nERROR one\nok\nERROR two\n"}))
    out = tmp_path / "app.log"
    result = run_apps(["logs", "a1", "--tail-lines", "5", "--search", "ERROR", "--output-file", str(out)],
                      server, tmp_path)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "ERROR one\nERROR two\n" and out.read_text() == result.stdout
    bad = run_apps(["logs", "a1", "--source", "NOPE"], server, tmp_path)
    assert bad.exit_code == 1 and "invalid --source value 'NOPE'" in bad.stderr


def test_follow_prints_only_new_lines() -> None:
    assert new_lines(["a", "b", "c"], ["b", "c", "d", "e"]) == ["d", "e"]
    assert new_lines(["a", "b"], ["a", "b"]) == []
    assert new_lines(["x"], ["y", "z"]) == ["y", "z"]


def test_logs_and_deploy_in_a_project_folder(server: RecordingServer, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a name, in a folder with databricks.yml: `logs` reads the project's app;
    `deploy` deploys the bundle and runs its app; elsewhere the name is required."""
    from ladle.cli import apps_project

    project = tmp_path / "proj"
    project.mkdir()
    (project / "databricks.yml").write_text("bundle: {name: b}\nresources:\n  apps:\n    web:\n      name: my-web\n")
    server.on("GET", f"{APPS}/my-web/logs?tail_lines=200", Reply(body={"logs": "hello\n"}))
    steps: list[list[str]] = []
    monkeypatch.setattr(apps_project.subprocess, "run",
                        lambda cmd, check: steps.append(cmd[3:]) or type("R", (), {"returncode": 0})())
    monkeypatch.chdir(project)
    result = run_apps(["logs"], server, tmp_path)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "hello\n" and "Streaming logs for app 'my-web' from project configuration" in result.stderr
    assert run_apps(["deploy"], server, tmp_path).exit_code == 0
    assert steps == [["bundle", "deploy"], ["bundle", "run", "web"]]
    monkeypatch.chdir(tmp_path)
    outside = run_apps(["deploy"], server, tmp_path)
    assert outside.exit_code == 2 and "Missing argument 'APP_NAME'" in outside.stderr
