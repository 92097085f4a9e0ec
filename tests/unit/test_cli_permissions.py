"""`ladle permissions` (like `databricks permissions`) against a recording HTTP server."""

from __future__ import annotations

import json
from pathlib import Path

try:
    from .cli_fakes import TOKEN, RecordingServer, Reply, base_env, run, server, _recording_server  # noqa: F401
except ImportError:  # tests/unit is not a package
    from cli_fakes import TOKEN, RecordingServer, Reply, base_env, run, server, _recording_server  # noqa: F401

ACL = {"object_id": "/registered-models/main.default.iris", "object_type": "registered-model",
       "access_control_list": [{"user_name": "bob", "display_name": "bob",
                                "all_permissions": [{"permission_level": "CAN_READ", "inherited": False}]}]}


def _run(args: list[str], server: RecordingServer, tmp_path: Path):
    from ladle.cli.permissions import permissions

    return run(permissions, args, base_env(tmp_path, DATABRICKS_HOST=server.url, DATABRICKS_TOKEN=TOKEN))


def test_each_command_calls_its_route_and_prints_the_answer(server: RecordingServer, tmp_path: Path) -> None:
    path = "/api/2.0/permissions/registered-models/main.default.iris"
    grants = {"access_control_list": [{"user_name": "bob", "permission_level": "CAN_READ"}]}
    for args, method, sent in [
        (["get", "registered-models", "main.default.iris"], "GET", None),
        (["set", "registered-models", "main.default.iris", "--json", json.dumps(grants)], "PUT", grants),
        (["update", "registered-models", "main.default.iris", "--json", json.dumps(grants)], "PATCH", grants),
    ]:
        server.reset()
        server.on(method, path, Reply(body=ACL))
        result = _run(args, server, tmp_path)
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["access_control_list"][0]["user_name"] == "bob"
        (call,) = server.calls()
        assert (call.method, call.path) == (method, path)
        assert (call.json if sent is not None else None) == sent
    server.reset()
    server.on("GET", path + "/permissionLevels", Reply(body={"permission_levels": [{"permission_level": "CAN_READ"}]}))
    result = _run(["get-permission-levels", "registered-models", "main.default.iris"], server, tmp_path)
    assert result.exit_code == 0 and "CAN_READ" in result.stdout


def test_a_denial_is_printed_and_exits_1(server: RecordingServer, tmp_path: Path) -> None:
    server.on("PUT", "/api/2.0/permissions/experiments/7", Reply(403, {
        "error_code": "PERMISSION_DENIED",
        "message": "Principal 'bob' does not have CAN_MANAGE permission on experiment '7'."}))
    result = _run(["set", "experiments", "7", "--json", "{}"], server, tmp_path)
    assert result.exit_code == 1
    assert "does not have CAN_MANAGE permission on experiment '7'" in result.stderr
