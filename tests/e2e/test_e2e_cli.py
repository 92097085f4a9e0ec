"""The `ladle serving-endpoints` CLI as a subprocess, with DATABRICKS_HOST/DATABRICKS_TOKEN."""

from __future__ import annotations

import json
import subprocess

from e2e_support import SERVER_ARGV, entity

EP = "cli-ep"


def ladle(env: dict[str, str], *args: str, timeout: float = 180.0) -> subprocess.CompletedProcess:
    return subprocess.run([*SERVER_ARGV, *args], env=env, capture_output=True, text=True, timeout=timeout)


def ok_json(p: subprocess.CompletedProcess):
    assert p.returncode == 0, f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return json.loads(p.stdout)


def test_cli_endpoint_lifecycle(databricks_env, models, sample, v1_model, v2_model, tmp_path):
    env = databricks_env
    body = tmp_path / "create.json"
    body.write_text(json.dumps({"name": EP, "config": {"served_entities": [entity("1")]},
                                "tags": [{"key": "via", "value": "cli"}]}))
    created = ok_json(ladle(env, "serving-endpoints", "create", "--json", f"@{body}", "--timeout", "2m"))
    try:
        assert created["name"] == EP
        assert created["state"]["config_update"] == "NOT_UPDATING"
        assert created["state"]["ready"] == "READY"

        got = ok_json(ladle(env, "serving-endpoints", "get", EP))
        assert got["id"] == created["id"] and got["tags"] == [{"key": "via", "value": "cli"}]
        listed = ok_json(ladle(env, "serving-endpoints", "list", "-o", "json"))
        assert isinstance(listed, list) and EP in [e["name"] for e in listed]

        query = json.dumps({"dataframe_records": sample.to_dict(orient="records")})
        answer = ok_json(ladle(env, "serving-endpoints", "query", EP, "--json", query))
        assert answer["predictions"] == v1_model.predict(sample).tolist()

        update = tmp_path / "update.json"
        update.write_text(json.dumps({"served_entities": [entity("2")]}))
        updated = ok_json(ladle(env, "serving-endpoints", "update-config", EP, "--json", f"@{update}",
                                "--timeout", "2m"))
        assert updated["state"]["config_update"] == "NOT_UPDATING"
        assert [e["entity_version"] for e in updated["config"]["served_entities"]] == ["2"]
        answer = ok_json(ladle(env, "serving-endpoints", "query", EP, "--json", query))
        assert answer["predictions"] == v2_model.predict(sample).tolist()

        logs = ok_json(ladle(env, "serving-endpoints", "build-logs", EP, "iris-2"))
        assert "main.default.iris" in logs["logs"]
    finally:
        deleted = ladle(env, "serving-endpoints", "delete", EP)
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.strip() == ""
    assert EP not in [e["name"] for e in ok_json(ladle(env, "serving-endpoints", "list"))]


def test_cli_missing_endpoint_prints_error_and_fails(databricks_env):
    p = ladle(databricks_env, "serving-endpoints", "get", "no-such-endpoint")
    assert p.returncode != 0
    assert "Error: " in p.stderr
    assert "no-such-endpoint" in p.stderr
    assert "Traceback" not in p.stderr
    assert p.stdout.strip() == ""


def test_cli_invalid_create_names_the_field(databricks_env, models):   # iris v1, v2 registered
    body = json.dumps({"name": "bad-traffic", "config": {
        "served_entities": [entity("1", name="a"), entity("2", name="b")],
        "traffic_config": {"routes": [{"served_model_name": "a", "traffic_percentage": 60},
                                      {"served_model_name": "b", "traffic_percentage": 60}]}}})
    p = ladle(databricks_env, "serving-endpoints", "create", "--json", body, "--no-wait")
    assert p.returncode != 0
    assert p.stderr.startswith("Error: ") and "traffic" in p.stderr
