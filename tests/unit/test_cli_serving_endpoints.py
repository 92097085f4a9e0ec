"""`ladle serving-endpoints` against a recording HTTP server: what it sends, what it prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

try:
    from .cli_fakes import TOKEN, RecordingServer, Reply, base_env, endpoint, run, run_se, server, _recording_server  # noqa: F401
except ImportError:  # tests/unit is not a package
    from cli_fakes import TOKEN, RecordingServer, Reply, base_env, endpoint, run, run_se, server, _recording_server  # noqa: F401

BASE = "/api/2.0/serving-endpoints"
NOT_FOUND = {
    "error_code": "RESOURCE_DOES_NOT_EXIST",
    "message": "Endpoint with name 'x' does not exist.",
    "details": [{"@type": "type.googleapis.com/google.rpc.RequestInfo", "request_id": "r1", "serving_data": ""}],
}


def test_get_prints_pretty_json_without_empty_fields(server: RecordingServer, tmp_path: Path) -> None:
    server.on("GET", f"{BASE}/ep1", Reply(body=endpoint()))
    result = run_se(["get", "ep1"], server, tmp_path)
    assert result.exit_code == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["name"] == "ep1"
    assert "description" not in printed and "tags" not in printed  # "" and [] omitted
    assert printed["route_optimized"] is False  # false is kept
    assert result.stdout.startswith('{\n  "name": "ep1",\n  "id": ')  # 2-space indent
    (call,) = server.calls()
    assert call.method == "GET" and call.path == f"{BASE}/ep1"
    assert call.headers["authorization"] == f"Bearer {TOKEN}"
    assert call.headers["user-agent"].startswith("ladle-cli/")


def test_json_output_mode_is_the_same_pretty_json(server: RecordingServer, tmp_path: Path) -> None:
    server.on("GET", f"{BASE}/ep1", Reply(body=endpoint()))
    text = run_se(["get", "ep1"], server, tmp_path).stdout
    assert run_se(["get", "ep1", "-o", "json"], server, tmp_path).stdout == text
    assert run_se(["-o", "json", "get", "ep1"], server, tmp_path).stdout == text
    assert run_se(["get", "ep1"], server, tmp_path, DATABRICKS_OUTPUT_FORMAT="json").stdout == text


def test_error_is_printed_from_the_message_and_exits_1(server: RecordingServer, tmp_path: Path) -> None:
    server.on("GET", f"{BASE}/x", Reply(404, NOT_FOUND))
    result = run_se(["get", "x"], server, tmp_path)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "Error: Endpoint with name 'x' does not exist.\n"


def test_error_without_json_body_uses_the_reason_or_text(server: RecordingServer, tmp_path: Path) -> None:
    server.on("GET", f"{BASE}/a", Reply(503, None))
    server.on("GET", f"{BASE}/b", Reply(500, "boom: it broke"))
    assert run_se(["get", "a"], server, tmp_path).stderr == "Error: Service Unavailable\n"
    assert run_se(["get", "b"], server, tmp_path).stderr == "Error: boom: it broke\n"


def test_connection_error_is_one_line(tmp_path: Path) -> None:
    from ladle.cli.serving_endpoints import serving_endpoints

    env = base_env(tmp_path, DATABRICKS_HOST="http://127.0.0.1:9", DATABRICKS_TOKEN="t")
    result = run(serving_endpoints, ["get", "ep1"], env)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot reach http://127.0.0.1:9")
    assert "Traceback" not in result.stderr


def test_list_prints_an_array_and_honours_limit(server: RecordingServer, tmp_path: Path) -> None:
    eps = [{"name": f"ep{i}", "tags": [], "state": {"ready": "READY"}} for i in range(3)]
    server.on("GET", BASE, Reply(body={"endpoints": eps}))
    result = run_se(["list"], server, tmp_path)
    assert result.exit_code == 0
    assert json.loads(result.stdout) == [{"name": f"ep{i}", "state": {"ready": "READY"}} for i in range(3)]
    limited = run_se(["list", "--limit", "2"], server, tmp_path)
    assert [e["name"] for e in json.loads(limited.stdout)] == ["ep0", "ep1"]
    bad = run_se(["list", "--limit", "-1"], server, tmp_path)
    assert bad.exit_code == 1 and "--limit" in bad.stderr


def test_list_empty_prints_empty_array(server: RecordingServer, tmp_path: Path) -> None:
    server.on("GET", BASE, Reply(body={}))
    assert run_se(["list"], server, tmp_path).stdout == "[]\n"


def test_delete_prints_nothing(server: RecordingServer, tmp_path: Path) -> None:
    server.on("DELETE", f"{BASE}/ep1", Reply(body={}))
    result = run_se(["delete", "ep1"], server, tmp_path)
    assert result.exit_code == 0
    assert result.stdout == "" and result.stderr == ""
    assert [c.method for c in server.calls()] == ["DELETE"]


def test_export_metrics_writes_raw_text_and_refuses_json(server: RecordingServer, tmp_path: Path) -> None:
    metrics = "# TYPE request_count_total counter\nrequest_count_total 3\n"
    server.on("GET", f"{BASE}/ep1/metrics", Reply(body=metrics, content_type="text/plain; version=0.0.4"))
    result = run_se(["export-metrics", "ep1"], server, tmp_path)
    assert result.exit_code == 0
    assert result.stdout == metrics
    assert server.calls()[0].headers["accept"] == "text/plain"
    refused = run_se(["export-metrics", "ep1", "-o", "json"], server, tmp_path)
    assert refused.exit_code == 1
    assert refused.stderr == "Error: json output not supported\n"
    assert len(server.calls()) == 1  # nothing sent in json mode


def test_get_open_api_writes_raw_body(server: RecordingServer, tmp_path: Path) -> None:
    doc = '{"openapi": "3.1.0", "paths": {}}'
    server.on("GET", f"{BASE}/ep1/openapi", Reply(body=doc.encode(), content_type="text/plain"))
    result = run_se(["get-open-api", "ep1"], server, tmp_path)
    assert result.stdout == doc


@pytest.mark.parametrize(
    ("args", "method", "path"),
    [
        (["patch", "ep1"], "PATCH", f"{BASE}/ep1/tags"),
        (["patch-telemetry-config", "ep1"], "PATCH", f"{BASE}/ep1/telemetry-config"),
        (["put", "ep1"], "PUT", f"{BASE}/ep1/rate-limits"),
        (["put-ai-gateway", "ep1"], "PUT", f"{BASE}/ep1/ai-gateway"),
        (["update-notifications", "ep1"], "PATCH", f"{BASE}/ep1/notifications"),
        (["set-permissions", "abc123"], "PUT", "/api/2.0/permissions/serving-endpoints/abc123"),
        (["update-permissions", "abc123"], "PATCH", "/api/2.0/permissions/serving-endpoints/abc123"),
    ],
)
def test_json_write_commands_send_the_body(
    server: RecordingServer, tmp_path: Path, args: list[str], method: str, path: str
) -> None:
    server.on(method, path, Reply(body={"ok": True, "empty": {}}))
    body = {"add_tags": [{"key": "team", "value": "ml"}], "delete_tags": ["old"]}
    result = run_se([*args, "--json", json.dumps(body)], server, tmp_path)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"ok": True}
    (call,) = server.calls()
    assert (call.method, call.path, call.json) == (method, path, body)
    assert call.headers["content-type"] == "application/json"


def test_json_from_file(server: RecordingServer, tmp_path: Path) -> None:
    body = {"rate_limits": [{"calls": 10, "renewal_period": "minute"}]}
    path = tmp_path / "limits.json"
    path.write_text(json.dumps(body))
    server.on("PUT", f"{BASE}/ep1/rate-limits", Reply(body=body))
    result = run_se(["put", "ep1", "--json", f"@{path}"], server, tmp_path)
    assert result.exit_code == 0, result.stderr
    assert server.calls()[0].json == body


def test_bad_json_is_a_usage_error(server: RecordingServer, tmp_path: Path) -> None:
    for value in ["{nope", "[1, 2]", "@/does/not/exist.json"]:
        result = run_se(["put", "ep1", "--json", value], server, tmp_path)
        assert result.exit_code == 2
        assert "--json" in result.stderr
    assert server.calls() == []


@pytest.mark.parametrize(
    ("args", "path"),
    [
        (["get-permission-levels", "abc123"], "/api/2.0/permissions/serving-endpoints/abc123/permissionLevels"),
        (["get-permissions", "abc123"], "/api/2.0/permissions/serving-endpoints/abc123"),
        (["logs", "ep1", "m-1"], f"{BASE}/ep1/served-models/m-1/logs"),
        (["build-logs", "ep1", "m-1"], f"{BASE}/ep1/served-models/m-1/build-logs"),
    ],
)
def test_read_commands_hit_their_routes(server: RecordingServer, tmp_path: Path, args: list[str], path: str) -> None:
    server.on("GET", path, Reply(body={"logs": "line 1\nline 2\n"}))
    result = run_se(args, server, tmp_path)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"logs": "line 1\nline 2\n"}
    assert server.calls()[0].path == path


def test_http_request_is_not_supported(server: RecordingServer, tmp_path: Path) -> None:
    result = run_se(["http-request", "conn", "GET", "/x"], server, tmp_path)
    assert result.exit_code == 1
    assert result.stderr == "Error: http-request is not supported by ladle\n"


def test_group_has_all_22_subcommands() -> None:
    from ladle.cli.serving_endpoints import serving_endpoints

    assert len(serving_endpoints.commands) == 22
    assert serving_endpoints.commands["http-request"].hidden


def test_real_process_prints_no_traceback(server: RecordingServer, tmp_path: Path) -> None:
    server.on("GET", f"{BASE}/x", Reply(404, NOT_FOUND))
    code = "from ladle.cli.serving_endpoints import serving_endpoints as g; g(prog_name='ladle serving-endpoints')"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DATABRICKS_HOST": server.url, "DATABRICKS_TOKEN": TOKEN}
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-c", code, "get", "x"], env=env, cwd=root, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 1
    assert proc.stderr == "Error: Endpoint with name 'x' does not exist.\n"
    assert proc.stdout == ""
