"""Long-running serving-endpoints commands: the NOT_UPDATING waiter, --no-wait, --timeout."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

try:
    from .cli_fakes import RecordingServer, Reply, _recording_server, endpoint, run_se, server  # noqa: F401
except ImportError:  # tests/unit is not a package
    from cli_fakes import RecordingServer, Reply, _recording_server, endpoint, run_se, server  # noqa: F401

BASE = "/api/2.0/serving-endpoints"
CONFIG = {"served_entities": [{"entity_name": "m", "entity_version": "1", "workload_size": "Small"}]}


@pytest.fixture(autouse=True)
def fast_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    from ladle.cli import serving_endpoints_lro

    monkeypatch.setattr(serving_endpoints_lro, "POLL_INTERVAL_S", 0.05)


def _in_progress_twice_then_done(server: RecordingServer, name: str = "ep1") -> None:
    server.on(
        "GET",
        f"{BASE}/{name}",
        Reply(body=endpoint(name, "IN_PROGRESS")),
        Reply(body=endpoint(name, "IN_PROGRESS")),
        Reply(body=endpoint(name, "NOT_UPDATING", description="done")),
    )


def test_create_polls_until_not_updating(server: RecordingServer, tmp_path: Path) -> None:
    server.on("POST", BASE, Reply(body=endpoint("ep1", "IN_PROGRESS")))
    _in_progress_twice_then_done(server)
    body = {"config": CONFIG, "tags": [{"key": "team", "value": "ml"}]}
    result = run_se(
        ["create", "ep1", "--json", json.dumps(body), "--description", "hello", "--route-optimized"],
        server,
        tmp_path,
    )
    assert result.exit_code == 0, result.stderr
    post, *gets = server.calls()
    assert (post.method, post.path) == ("POST", BASE)
    assert post.json == {**body, "name": "ep1", "description": "hello", "route_optimized": True}
    assert [(g.method, g.path) for g in gets] == [("GET", f"{BASE}/ep1")] * 3
    assert json.loads(result.stdout)["description"] == "done"
    # stderr is not a TTY: one plain line per status change
    assert result.stderr == "current status: IN_PROGRESS\ncurrent status: NOT_UPDATING\n"


def test_create_name_from_json_only(server: RecordingServer, tmp_path: Path) -> None:
    server.on("POST", BASE, Reply(body=endpoint("ep2")))
    server.on("GET", f"{BASE}/ep2", Reply(body=endpoint("ep2")))
    result = run_se(["create", "--json", json.dumps({"name": "ep2", "config": CONFIG})], server, tmp_path)
    assert result.exit_code == 0, result.stderr
    assert server.calls()[0].json["name"] == "ep2"


def test_create_flags_override_json(server: RecordingServer, tmp_path: Path) -> None:
    server.on("POST", BASE, Reply(body=endpoint("ep1")))
    args = ["create", "ep1", "--no-wait", "--json", '{"description": "old", "budget_policy_id": "b0"}']
    result = run_se([*args, "--description", "new", "--budget-policy-id", "b1"], server, tmp_path)
    assert result.exit_code == 0
    assert server.calls()[0].json == {"description": "new", "budget_policy_id": "b1", "name": "ep1"}


def test_create_needs_a_name(server: RecordingServer, tmp_path: Path) -> None:
    missing = run_se(["create"], server, tmp_path)
    assert missing.exit_code == 2 and "NAME" in missing.stderr
    no_name = run_se(["create", "--json", "{}"], server, tmp_path)
    assert no_name.exit_code == 2 and "'name'" in no_name.stderr
    assert server.calls() == []


def test_no_wait_prints_the_immediate_response(server: RecordingServer, tmp_path: Path) -> None:
    server.on("PUT", f"{BASE}/ep1/config", Reply(body=endpoint("ep1", "IN_PROGRESS")))
    result = run_se(["update-config", "ep1", "--no-wait", "--json", json.dumps(CONFIG)], server, tmp_path)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["state"]["config_update"] == "IN_PROGRESS"
    (put,) = server.calls()
    assert (put.method, put.path, put.json) == ("PUT", f"{BASE}/ep1/config", CONFIG)
    assert result.stderr == ""


def test_update_config_failure_exits_1_with_message(server: RecordingServer, tmp_path: Path) -> None:
    server.on("PUT", f"{BASE}/ep1/config", Reply(body=endpoint("ep1", "IN_PROGRESS")))
    server.on("GET", f"{BASE}/ep1", Reply(body=endpoint("ep1", "IN_PROGRESS")), Reply(body=endpoint("ep1", "UPDATE_FAILED")))
    result = run_se(["update-config", "ep1", "--json", json.dumps(CONFIG)], server, tmp_path)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.endswith(
        "Error: failed to reach NOT_UPDATING, got UPDATE_FAILED: current status: UPDATE_FAILED\n"
    )


def test_timeout_expires(server: RecordingServer, tmp_path: Path) -> None:
    server.on("PUT", f"{BASE}/ep1/config", Reply(body=endpoint("ep1", "IN_PROGRESS")))
    server.on("GET", f"{BASE}/ep1", Reply(body=endpoint("ep1", "IN_PROGRESS")))
    started = time.monotonic()
    result = run_se(["update-config", "ep1", "--timeout", "2s"], server, tmp_path)
    elapsed = time.monotonic() - started
    assert result.exit_code == 1
    assert result.stderr.endswith("Error: timed out after 2s: current status: IN_PROGRESS\n")
    assert 1.9 <= elapsed < 6
    assert server.calls()[0].json == {}


def test_bad_timeout_is_a_usage_error(server: RecordingServer, tmp_path: Path) -> None:
    result = run_se(["update-config", "ep1", "--timeout", "soon"], server, tmp_path)
    assert result.exit_code == 2
    assert 'invalid duration "soon"' in result.stderr


def test_create_pt_requires_json_and_waits(server: RecordingServer, tmp_path: Path) -> None:
    missing = run_se(["create-provisioned-throughput-endpoint"], server, tmp_path)
    assert missing.exit_code == 2
    assert "please provide command input in JSON format" in missing.stderr
    server.on("POST", f"{BASE}/pt", Reply(body=endpoint("pt1", "IN_PROGRESS")))
    _in_progress_twice_then_done(server, "pt1")
    body = {"name": "pt1", "config": {"served_entities": [{"entity_name": "m", "provisioned_model_units": 50}]}}
    result = run_se(
        ["create-provisioned-throughput-endpoint", "--json", json.dumps(body), "--budget-policy-id", "b1"],
        server,
        tmp_path,
    )
    assert result.exit_code == 0, result.stderr
    assert server.calls()[0].json == {**body, "budget_policy_id": "b1"}
    assert json.loads(result.stdout)["name"] == "pt1"


def test_update_pt_config(server: RecordingServer, tmp_path: Path) -> None:
    missing = run_se(["update-provisioned-throughput-endpoint-config", "pt1"], server, tmp_path)
    assert missing.exit_code == 2
    server.on("PUT", f"{BASE}/pt/pt1/config", Reply(body=endpoint("pt1", "IN_PROGRESS")))
    _in_progress_twice_then_done(server, "pt1")
    body = {"config": {"served_entities": [{"entity_name": "m", "provisioned_model_units": 100}]}}
    result = run_se(["update-provisioned-throughput-endpoint-config", "pt1", "--json", json.dumps(body)], server, tmp_path)
    assert result.exit_code == 0, result.stderr
    assert server.calls()[0].json == body
    assert len(server.calls("GET")) == 3


def test_spinner_on_a_terminal(server: RecordingServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ladle.cli import serving_endpoints_lro

    monkeypatch.setattr(serving_endpoints_lro, "stderr_is_tty", lambda: True)
    server.on("POST", BASE, Reply(body=endpoint("ep1", "IN_PROGRESS")))
    _in_progress_twice_then_done(server)
    result = run_se(["create", "ep1"], server, tmp_path)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["name"] == "ep1"


def test_duration_parsing() -> None:
    from ladle.cli.options import format_duration, parse_duration

    assert parse_duration("20m") == 1200
    assert parse_duration("1h30m") == 5400
    assert parse_duration("45s") == 45
    assert parse_duration("1.5s") == 1.5
    assert parse_duration("250ms") == 0.25
    assert parse_duration("0") == 0
    for bad in ["", "10", "1x", "m", "-"]:
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert format_duration(1200) == "20m0s"
    assert format_duration(5400) == "1h30m0s"
    assert format_duration(2) == "2s"
    assert format_duration(1.5) == "1.5s"
