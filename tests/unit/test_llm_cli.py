"""`ladle secrets` and `ladle models` against a recording HTTP server."""

from __future__ import annotations

import json
from pathlib import Path

try:
    from .cli_fakes import TOKEN, RecordingServer, Reply, _recording_server, base_env, run, server  # noqa: F401
except ImportError:  # tests/unit is not a package
    from cli_fakes import TOKEN, RecordingServer, Reply, _recording_server, base_env, run, server  # noqa: F401


def _run(group_name: str, args: list[str], server: RecordingServer, tmp_path: Path, input: str | None = None):
    from ladle.cli.models import models
    from ladle.cli.secrets import secrets

    group = {"models": models, "secrets": secrets}[group_name]
    return run(group, args, base_env(tmp_path, DATABRICKS_HOST=server.url, DATABRICKS_TOKEN=TOKEN), input=input)


def test_secrets_commands(server: RecordingServer, tmp_path: Path) -> None:
    for path in ("/api/2.0/secrets/scopes/create", "/api/2.0/secrets/put", "/api/2.0/secrets/delete"):
        server.on("POST", path, Reply(body={}))
    server.on("GET", "/api/2.0/secrets/list?scope=llm", Reply(body={"secrets": [{"key": "k", "last_updated_timestamp": 1}]}))
    assert _run("secrets", ["create-scope", "llm"], server, tmp_path).exit_code == 0
    assert _run("secrets", ["put-secret", "llm", "k", "--string-value", "v1"], server, tmp_path).exit_code == 0
    r = _run("secrets", ["put-secret", "llm", "k2"], server, tmp_path, input="from-stdin\n")
    assert r.exit_code == 0, r.stderr
    listed = _run("secrets", ["list-secrets", "llm"], server, tmp_path)
    assert json.loads(listed.stdout) == [{"key": "k", "last_updated_timestamp": 1}]
    assert _run("secrets", ["delete-secret", "llm", "k"], server, tmp_path).exit_code == 0
    bodies = [(c.method, c.path, c.json) for c in server.calls()]
    assert bodies[0] == ("POST", "/api/2.0/secrets/scopes/create", {"scope": "llm"})
    assert bodies[1][2] == {"scope": "llm", "key": "k", "string_value": "v1"}
    assert bodies[2][2] == {"scope": "llm", "key": "k2", "string_value": "from-stdin"}
    assert server.calls("GET")[0].path == "/api/2.0/secrets/list?scope=llm"
    assert bodies[-1] == ("POST", "/api/2.0/secrets/delete", {"scope": "llm", "key": "k"})


def test_models_add_local_is_one_call(server: RecordingServer, tmp_path: Path) -> None:
    server.on("POST", "/api/2.0/ladle/foundation-models/add-local", Reply(body={"model": {"name": "tiny"}}))
    r = _run("models", ["add-local", str(tmp_path), "--name", "tiny", "--task", "llm/v1/chat"], server, tmp_path)
    assert r.exit_code == 0, r.stderr
    (call,) = server.calls()
    assert call.json == {"path": str(tmp_path), "name": "tiny", "task": "llm/v1/chat"}
    bad = _run("models", ["add-local", str(tmp_path), "--name", "x", "--task", "chat"], server, tmp_path)
    assert bad.exit_code == 2


def test_secret_acl_commands_take_the_databricks_cli_arguments(server: RecordingServer, tmp_path: Path) -> None:
    for path in ("/api/2.0/secrets/acls/put", "/api/2.0/secrets/acls/delete", "/api/2.0/secrets/scopes/create"):
        server.on("POST", path, Reply(body={}))
    server.on("GET", "/api/2.0/secrets/acls/get?scope=llm&principal=data+team",
              Reply(body={"principal": "data team", "permission": "READ"}))
    server.on("GET", "/api/2.0/secrets/acls/list?scope=llm", Reply(body={"items": [
        {"principal": "alice", "permission": "MANAGE"}, {"principal": "data team", "permission": "READ"}]}))
    assert _run("secrets", ["put-acl", "llm", "data team", "READ"], server, tmp_path).exit_code == 0
    r = _run("secrets", ["put-acl", "--json", '{"scope": "llm", "principal": "bob", "permission": "WRITE"}'],
             server, tmp_path)
    assert r.exit_code == 0, r.stderr
    got = _run("secrets", ["get-acl", "llm", "data team"], server, tmp_path)
    assert json.loads(got.stdout) == {"principal": "data team", "permission": "READ"}
    listed = _run("secrets", ["list-acls", "llm"], server, tmp_path)
    assert [a["principal"] for a in json.loads(listed.stdout)] == ["alice", "data team"]
    assert _run("secrets", ["delete-acl", "llm", "bob"], server, tmp_path).exit_code == 0
    r = _run("secrets", ["create-scope", "team", "--initial-manage-principal", "users"], server, tmp_path)
    assert r.exit_code == 0, r.stderr
    assert [(c.path, c.json) for c in server.calls("POST")] == [
        ("/api/2.0/secrets/acls/put", {"scope": "llm", "principal": "data team", "permission": "READ"}),
        ("/api/2.0/secrets/acls/put", {"scope": "llm", "principal": "bob", "permission": "WRITE"}),
        ("/api/2.0/secrets/acls/delete", {"scope": "llm", "principal": "bob"}),
        ("/api/2.0/secrets/scopes/create", {"scope": "team", "initial_manage_principal": "users"}),
    ]
    # usage errors are the CLI's (exit 2), before any request
    assert _run("secrets", ["put-acl", "llm", "bob"], server, tmp_path).exit_code == 2
    assert _run("secrets", ["delete-acl", "llm", "bob", "--json", "{}"], server, tmp_path).exit_code == 2
    assert _run("secrets", ["list-acls"], server, tmp_path).exit_code == 2
    assert len(server.calls("POST")) == 4
