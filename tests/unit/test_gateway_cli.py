"""`ladle groups` and `ladle usage` against a recording HTTP server."""

from __future__ import annotations

import json
from pathlib import Path

try:
    from .cli_fakes import TOKEN, RecordingServer, Reply, _recording_server, base_env, run, server  # noqa: F401
except ImportError:  # tests/unit is not a package
    from cli_fakes import TOKEN, RecordingServer, Reply, _recording_server, base_env, run, server  # noqa: F401

GROUPS = "/api/2.0/ladle/groups"
ROWS = [{"requester": "alice", "request_count": 12, "error_count": 2, "input_token_count": 300,
         "output_token_count": 1200, "request_size_bytes": 4096, "response_size_bytes": 65536},
        {"requester": "sp-1", "request_count": 3, "error_count": 0, "input_token_count": 0,
         "output_token_count": 0, "request_size_bytes": 10, "response_size_bytes": 20}]


def cli(args, server, tmp_path):
    from ladle.cli.main import _register, cli as root

    _register()
    return run(root, args, base_env(tmp_path, DATABRICKS_HOST=server.url, DATABRICKS_TOKEN=TOKEN))


def test_groups_commands_send_the_api_calls(server: RecordingServer, tmp_path: Path) -> None:
    group = {"display_name": "ml", "members": [{"name": "alice", "type": "user"}]}
    server.on("POST", GROUPS, Reply(body={"display_name": "ml", "members": []}))
    server.on("GET", GROUPS, Reply(body={"groups": [group]}))
    server.on("POST", f"{GROUPS}/ml/members", Reply(body=group))
    server.on("DELETE", f"{GROUPS}/ml/members/sp%201", Reply(body={"display_name": "ml", "members": []}))
    server.on("DELETE", f"{GROUPS}/ml", Reply(body={}))
    assert cli(["groups", "create", "ml"], server, tmp_path).exit_code == 0
    listed = cli(["groups", "list"], server, tmp_path)
    assert json.loads(listed.stdout) == [group]
    assert cli(["groups", "add-member", "ml", "--user", "alice"], server, tmp_path).exit_code == 0
    assert cli(["groups", "add-member", "ml", "--service-principal", "sp 1"], server, tmp_path).exit_code == 0
    bad = cli(["groups", "add-member", "ml"], server, tmp_path)
    assert bad.exit_code == 2 and "exactly one of --user or --service-principal" in bad.output
    assert cli(["groups", "remove-member", "ml", "sp 1"], server, tmp_path).exit_code == 0
    assert cli(["groups", "delete", "ml"], server, tmp_path).exit_code == 0
    sent = [(c.method, c.path, c.json) for c in server.calls()]
    assert sent == [
        ("POST", GROUPS, {"display_name": "ml"}), ("GET", GROUPS, None),
        ("POST", f"{GROUPS}/ml/members", {"user_name": "alice"}),
        ("POST", f"{GROUPS}/ml/members", {"service_principal_name": "sp 1"}),
        ("DELETE", f"{GROUPS}/ml/members/sp%201", None), ("DELETE", f"{GROUPS}/ml", None)]


def test_usage_prints_a_table_or_json(server: RecordingServer, tmp_path: Path) -> None:
    path = "/api/2.0/ladle/usage?group_by=requester&endpoint=my%20ep"
    server.on("GET", path, Reply(body={"group_by": "requester", "rows": ROWS}))
    out = cli(["usage", "--by", "requester", "--endpoint", "my ep"], server, tmp_path)
    assert out.exit_code == 0, out.output
    assert out.stdout.splitlines() == [
        "REQUESTER  REQUESTS  ERRORS  INPUT TOKENS  OUTPUT TOKENS  REQUEST BYTES  RESPONSE BYTES",
        "alice            12       2           300           1200           4096           65536",
        "sp-1              3       0             0              0             10              20",
    ]
    as_json = cli(["usage", "--by", "requester", "--endpoint", "my ep", "-o", "json"], server, tmp_path)
    assert json.loads(as_json.stdout) == ROWS
    server.on("GET", "/api/2.0/ladle/usage?group_by=endpoint", Reply(status=404, body={
        "error_code": "RESOURCE_DOES_NOT_EXIST", "message": "No usage has been recorded"}))
    missing = cli(["usage"], server, tmp_path)
    assert missing.exit_code == 1 and "No usage has been recorded" in missing.output
