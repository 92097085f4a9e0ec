"""The CLI's global flags on every command, the error before any request when nothing is
configured, and the logging flags (against the recording server; no ladle server starts)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

try:
    from .cli_fakes import TOKEN, RecordingServer, Reply, _recording_server, base_env, endpoint, server  # noqa: F401
except ImportError:  # tests/unit is not a package
    from cli_fakes import TOKEN, RecordingServer, Reply, _recording_server, base_env, endpoint, server  # noqa: F401

GLOBAL_FLAGS = {"--profile", "--output", "--debug", "--log-level", "--log-file", "--log-format"}
EP1 = "/api/2.0/serving-endpoints/ep1"
SECRET_TOKEN = "dapi0123456789abcdef-real-looking"
# arguments that get each command past its own input checks (others: "x" per positional)
ARGS = {
    ("apps", "create"): ["x"],
    ("groups", "add-member"): ["g", "--user", "u"],
    ("models", "add-local"): ["/m", "--name", "n", "--task", "llm/v1/chat"],
    ("secrets", "delete-acl"): ["s", "p"],
    ("secrets", "put-acl"): ["s", "p", "READ"],
    ("secrets", "put-secret"): ["s", "k", "--string-value", "v"],
    ("tokens", "create"): ["--user", "u"],
}
# never talk to the API (apps init and manifest write or print the template's files)
NO_HTTP = {("server",), ("serving-endpoints", "http-request"), ("apps", "init"), ("apps", "manifest")}
# Commands that set up or report credentials answer with the Databricks CLI's own messages
# (tests/unit/test_cli_auth.py), not with the resolution error of the API commands.
OWN_MESSAGES = {("version",), ("configure",), *(("auth", name) for name in
                ("describe", "env", "login", "logout", "profiles", "switch", "token")),
                # bundle commands look for databricks.yml first, as the Databricks CLI's do
                *(("bundle", name) for name in ("deploy", "destroy", "run", "summary", "validate"))}


def root() -> click.Group:
    from ladle.cli.main import _register, cli

    _register()
    return cli


def ladle(args: list[str], env: dict[str, str | None], input: str | None = None) -> Result:
    """`ladle ARGS` in this process."""
    return CliRunner().invoke(root(), args, env=env, prog_name="ladle", input=input, terminal_width=80)


def leaves(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            yield from leaves(cmd, (*path, name))
        else:
            yield (*path, name), cmd


def args_for(path: tuple[str, ...], cmd: click.Command) -> list[str]:
    if path in ARGS:
        return list(ARGS[path])
    args = ["x" for p in cmd.params if isinstance(p, click.Argument)]
    if any("--json" in p.opts for p in cmd.params):
        args += ["--json", "{}"]
    return args


def long_names(cmd: click.Command) -> set[str]:
    return {o for p in cmd.params if isinstance(p, click.Option) for o in p.opts if o.startswith("--")}


def write_cfg(tmp_path: Path, url: str) -> Path:
    path = tmp_path / ".databrickscfg"
    path.write_text("[DEFAULT]\nhost = http://127.0.0.1:9\ntoken = tok-default\n\n"
                    f"[dev]\nhost = {url}\ntoken = tok-dev\n")
    return path


def test_every_group_and_command_takes_the_global_flags() -> None:
    cli = root()
    assert GLOBAL_FLAGS <= long_names(cli)
    checked = 0
    for name, cmd in cli.commands.items():
        if isinstance(cmd, click.Group):
            assert GLOBAL_FLAGS <= long_names(cmd), name
    for path, cmd in leaves(cli):
        if path not in NO_HTTP:
            assert GLOBAL_FLAGS <= long_names(cmd), path
            checked += 1
    assert checked >= 40


@pytest.mark.parametrize("creds", ["nothing", "host only"])
def test_every_command_fails_before_any_request_without_credentials(
    server: RecordingServer, tmp_path: Path, creds: str
) -> None:
    """No host, or a host and no token: each command says so and the server gets no request."""
    env = base_env(tmp_path, DATABRICKS_HOST=server.url if creds == "host only" else None)
    cli = root()
    seen = 0
    for path, cmd in leaves(cli):
        if path in NO_HTTP or path in OWN_MESSAGES:
            continue
        result = ladle([*path, *args_for(path, cmd)], env, input="")
        assert result.exit_code == 1, (path, result.output)
        assert result.stderr.startswith("Error: cannot configure default credentials"), (path, result.stderr)
        assert "use --profile" in result.stderr and "authenticate first" in result.stderr
        seen += 1
    assert seen >= 40
    assert server.requests == []


@pytest.mark.parametrize(
    "args",
    [
        ["-p", "dev", "serving-endpoints", "get", "ep1"],
        ["serving-endpoints", "--profile", "dev", "get", "ep1"],
        ["serving-endpoints", "get", "ep1", "-p", "dev"],
        ["-p", "nope", "serving-endpoints", "get", "ep1", "-p", "dev"],  # the last one wins
    ],
    ids=["root", "group", "command", "last-wins"],
)
def test_profile_flag_anywhere(server: RecordingServer, tmp_path: Path, args: list[str]) -> None:
    write_cfg(tmp_path, server.url)
    server.on("GET", EP1, Reply(body=endpoint()))
    result = ladle(args, base_env(tmp_path, DATABRICKS_HOST="http://127.0.0.1:9", DATABRICKS_TOKEN="tok-env"))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["name"] == "ep1"
    assert [c.headers["authorization"] for c in server.calls()] == ["Bearer tok-dev"]


def test_output_and_debug_flags_on_the_root(server: RecordingServer, tmp_path: Path) -> None:
    server.on("GET", "/api/2.0/ladle/usage?group_by=endpoint", Reply(body={"rows": [{"endpoint": "ep1"}]}))
    env = base_env(tmp_path, DATABRICKS_HOST=server.url, DATABRICKS_TOKEN=SECRET_TOKEN)
    result = ladle(["-o", "json", "--debug", "usage"], env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"endpoint": "ep1"}]
    assert f"> GET {server.url}/api/2.0/ladle/usage?group_by=endpoint" in result.stderr
    assert SECRET_TOKEN not in result.stderr


def test_no_log_lines_by_default(server: RecordingServer, tmp_path: Path) -> None:
    server.on("GET", EP1, Reply(body=endpoint()))
    result = ladle(["serving-endpoints", "get", "ep1"], base_env(tmp_path, DATABRICKS_HOST=server.url,
                                                                        DATABRICKS_TOKEN=TOKEN))
    assert result.exit_code == 0 and result.stderr == ""


def test_log_file_text_has_the_run_and_no_secrets(server: RecordingServer, tmp_path: Path) -> None:
    server.on("POST", "/api/2.0/secrets/put", Reply(body={}))
    log_file = tmp_path / "cli.log"
    env = base_env(tmp_path, DATABRICKS_HOST=server.url, DATABRICKS_TOKEN=SECRET_TOKEN)
    args = ["--log-level", "trace", "--log-file", str(log_file), "secrets", "put-secret", "s", "k",
            "--string-value", "hunter2-secret-value"]
    result = ladle(args, env)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # the log went to the file only
    assert server.calls()[0].headers["authorization"] == f"Bearer {SECRET_TOKEN}"
    text = log_file.read_text()
    assert stat.S_IMODE(os.stat(log_file).st_mode) == 0o600
    assert "INFO start" in text and "command='ladle secrets put-secret'" in text
    assert f"> POST {server.url}/api/2.0/secrets/put" in text and "< 200 OK" in text
    assert "completed execution exit_code=0" in text
    assert SECRET_TOKEN not in text and "hunter2-secret-value" not in text


def test_log_format_json_on_a_group_and_failure_logged(server: RecordingServer, tmp_path: Path) -> None:
    server.on("GET", EP1, Reply(404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no ep1"}))
    log_file = tmp_path / "cli.jsonl"
    env = base_env(tmp_path, DATABRICKS_HOST=server.url, DATABRICKS_TOKEN=SECRET_TOKEN,
                   DATABRICKS_LOG_FORMAT="json", DATABRICKS_LOG_FILE=str(log_file))
    result = ladle(["serving-endpoints", "--log-level", "debug", "get", "ep1"], env)
    assert result.exit_code == 1 and result.stderr == "Error: no ep1\n"
    entries = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert {"time", "level", "msg", "pid"} <= set(entries[0])
    msgs = [(e["level"], e["msg"]) for e in entries]
    assert ("DEBUG", f"> GET {server.url}{EP1}") in msgs
    assert msgs[-1] == ("INFO", "failed execution exit_code=1 error='no ep1'")
    assert SECRET_TOKEN not in log_file.read_text()


def test_log_level_from_env_and_bad_values(server: RecordingServer, tmp_path: Path) -> None:
    server.on("GET", EP1, Reply(body=endpoint()))
    env = base_env(tmp_path, DATABRICKS_HOST=server.url, DATABRICKS_TOKEN=TOKEN, DATABRICKS_LOG_LEVEL="info")
    result = ladle(["serving-endpoints", "get", "ep1"], env)
    assert "INFO start" in result.stderr and "> GET" not in result.stderr  # info, not debug
    env["DATABRICKS_LOG_LEVEL"] = "loud"  # an invalid environment value is ignored, as in databricks
    assert ladle(["serving-endpoints", "get", "ep1"], env).stderr == ""
    bad = ladle(["--log-level", "loud", "serving-endpoints", "get", "ep1"], env)
    assert bad.exit_code == 2
    assert "'loud' is not one of 'trace', 'debug', 'info', 'warn', 'error', 'disabled'" in bad.stderr
    unwritable = ladle(["--log-file", str(tmp_path / "no" / "dir.log"), "serving-endpoints", "get", "ep1"],
                     {**env, "DATABRICKS_LOG_LEVEL": "debug"})
    assert unwritable.exit_code == 1 and unwritable.stderr.startswith("Error: cannot open log file")


def test_real_process_root_flags(server: RecordingServer, tmp_path: Path) -> None:
    """The installed entry point (`ladle.cli.main:main`) with root flags, in its own process."""
    import subprocess
    import sys

    write_cfg(tmp_path, server.url)
    server.on("GET", EP1, Reply(body=endpoint()))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DATABRICKS_TOKEN": "dapi-env-token-not-used"}
    code = "from ladle.cli.main import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", code, "-p", "dev", "--log-level", "debug", "serving-endpoints", "get", "ep1"],
        env=env, cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["name"] == "ep1"
    assert f"DEBUG > GET {server.url}{EP1}" in proc.stderr
    assert "tok-dev" not in proc.stderr and "dapi-env-token-not-used" not in proc.stderr
    assert [c.headers["authorization"] for c in server.calls()] == ["Bearer tok-dev"]
