"""`ladle tokens` against a recording HTTP server."""

from __future__ import annotations

import json
from pathlib import Path

try:
    from .cli_fakes import TOKEN, RecordingServer, Reply, _recording_server, run_tokens, server  # noqa: F401
except ImportError:  # tests/unit is not a package
    from cli_fakes import TOKEN, RecordingServer, Reply, _recording_server, run_tokens, server  # noqa: F401

ON_BEHALF_OF = "/api/2.0/token-management/on-behalf-of/tokens"
TOKENS = "/api/2.0/token-management/tokens"
INFO = {
    "token_id": "t1",
    "comment": "",
    "creation_time": 1700000000000,
    "expiry_time": -1,
    "owner_id": 7,
    "created_by_username": "admin",
}


def test_create_for_user(server: RecordingServer, tmp_path: Path) -> None:
    server.on("POST", ON_BEHALF_OF, Reply(body={"token_value": "dapi123", "token_info": INFO}))
    result = run_tokens(["create", "--user", "alice", "--comment", "ci", "--lifetime-seconds", "3600"], server, tmp_path)
    assert result.exit_code == 0, result.stderr
    (call,) = server.calls()
    assert call.json == {"user_name": "alice", "comment": "ci", "lifetime_seconds": 3600}
    assert call.headers["authorization"] == f"Bearer {TOKEN}"
    printed = json.loads(result.stdout)
    assert printed["token_value"] == "dapi123"
    assert "comment" not in printed["token_info"]
    assert printed["token_info"]["expiry_time"] == -1


def test_create_for_service_principal(server: RecordingServer, tmp_path: Path) -> None:
    server.on("POST", ON_BEHALF_OF, Reply(body={"token_value": "dapi456", "token_info": INFO}))
    result = run_tokens(["-o", "json", "create", "--service-principal", "sp-app-1"], server, tmp_path)
    assert result.exit_code == 0, result.stderr
    assert server.calls()[0].json == {"application_id": "sp-app-1"}


def test_create_needs_exactly_one_principal(server: RecordingServer, tmp_path: Path) -> None:
    for args in (["create"], ["create", "--user", "a", "--service-principal", "b"]):
        result = run_tokens(args, server, tmp_path)
        assert result.exit_code == 2
        assert "exactly one of --user or --service-principal" in result.stderr
    assert server.calls() == []


def test_list_prints_token_infos(server: RecordingServer, tmp_path: Path) -> None:
    server.on("GET", TOKENS, Reply(body={"token_infos": [INFO, {**INFO, "token_id": "t2"}]}))
    result = run_tokens(["list"], server, tmp_path)
    assert result.exit_code == 0
    assert [t["token_id"] for t in json.loads(result.stdout)] == ["t1", "t2"]
    server.on("GET", TOKENS, Reply(body={}))
    assert run_tokens(["list"], server, tmp_path).stdout == "[]\n"


def test_revoke(server: RecordingServer, tmp_path: Path) -> None:
    server.on("DELETE", f"{TOKENS}/t1", Reply(body={}))
    result = run_tokens(["revoke", "t1"], server, tmp_path)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert server.calls()[0].method == "DELETE"


def test_revoke_unknown_token(server: RecordingServer, tmp_path: Path) -> None:
    error = {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Token t9 does not exist."}
    server.on("DELETE", f"{TOKENS}/t9", Reply(404, error))
    result = run_tokens(["revoke", "t9"], server, tmp_path)
    assert result.exit_code == 1
    assert result.stderr == "Error: Token t9 does not exist.\n"
