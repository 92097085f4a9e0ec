"""Host/token resolution (env, ~/.databrickscfg profiles) and output pruning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

try:
    from .test_cli_fakes import RecordingServer, Reply, _recording_server, base_env, endpoint, run, server  # noqa: F401
except ImportError:  # tests/unit is not a package
    from test_cli_fakes import RecordingServer, Reply, _recording_server, base_env, endpoint, run, server  # noqa: F401

from ladle.cli.client import ConfigError, resolve_config


def _write_cfg(path: Path, server_url: str = "http://127.0.0.1:1") -> Path:
    path.write_text(
        "[DEFAULT]\n"
        "host = default.example.com/\n"
        "token = tok-default\n"
        "\n"
        "[local]\n"
        f"host = {server_url}/\n"
        "token = tok-local\n"
    )
    return path


def test_env_wins_without_profile(tmp_path: Path) -> None:
    _write_cfg(tmp_path / ".databrickscfg")
    cfg = resolve_config(None, {"HOME": str(tmp_path), "DATABRICKS_HOST": "http://h:1/", "DATABRICKS_TOKEN": "t"})
    assert (cfg.host, cfg.token) == ("http://h:1", "t")


def test_default_profile_from_home(tmp_path: Path) -> None:
    _write_cfg(tmp_path / ".databrickscfg")
    cfg = resolve_config(None, {"HOME": str(tmp_path)})
    assert (cfg.host, cfg.token) == ("https://default.example.com", "tok-default")


def test_named_profile_does_not_inherit_default(tmp_path: Path) -> None:
    cfg_file = tmp_path / "cfg"
    cfg_file.write_text("[DEFAULT]\ntoken = tok-default\n\n[nohost]\nhost = http://x:1\n")
    cfg = resolve_config("nohost", {"DATABRICKS_CONFIG_FILE": str(cfg_file)})
    assert (cfg.host, cfg.token) == ("http://x:1", None)


def test_explicit_profile_wins_over_env(tmp_path: Path) -> None:
    _write_cfg(tmp_path / ".databrickscfg")
    env = {"HOME": str(tmp_path), "DATABRICKS_HOST": "http://h:1", "DATABRICKS_TOKEN": "t"}
    cfg = resolve_config("local", env)
    assert (cfg.host, cfg.token) == ("http://127.0.0.1:1", "tok-local")


def test_profile_from_env_and_settings(tmp_path: Path) -> None:
    cfg_file = _write_cfg(tmp_path / "cfg")
    cfg = resolve_config(None, {"DATABRICKS_CONFIG_FILE": str(cfg_file), "DATABRICKS_CONFIG_PROFILE": "local"})
    assert cfg.token == "tok-local"
    cfg_file.write_text(cfg_file.read_text() + "\n[__settings__]\ndefault_profile = local\n")
    assert resolve_config(None, {"DATABRICKS_CONFIG_FILE": str(cfg_file)}).token == "tok-local"


def test_env_token_fills_profile_host(tmp_path: Path) -> None:
    (tmp_path / ".databrickscfg").write_text("[DEFAULT]\nhost = http://h:2\n")
    cfg = resolve_config(None, {"HOME": str(tmp_path), "DATABRICKS_TOKEN": "t-env"})
    assert (cfg.host, cfg.token) == ("http://h:2", "t-env")


def test_missing_config_and_profile_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DATABRICKS_HOST"):
        resolve_config(None, {"HOME": str(tmp_path)})
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_config("nope", {"HOME": str(tmp_path)})
    _write_cfg(tmp_path / ".databrickscfg")
    with pytest.raises(ConfigError, match="'nope' not found"):
        resolve_config("nope", {"HOME": str(tmp_path)})
    with pytest.raises(ConfigError, match="'nope' not found"):
        resolve_config(None, {"HOME": str(tmp_path), "DATABRICKS_CONFIG_PROFILE": "nope"})


def test_cli_uses_profile_from_config_file(server: RecordingServer, tmp_path: Path) -> None:
    from ladle.cli.serving_endpoints import serving_endpoints

    cfg_file = _write_cfg(tmp_path / "databrickscfg", server.url)
    server.on("GET", "/api/2.0/serving-endpoints/ep1", Reply(body=endpoint()))
    env = base_env(tmp_path, DATABRICKS_CONFIG_FILE=str(cfg_file), DATABRICKS_HOST="http://127.0.0.1:9")
    result = run(serving_endpoints, ["get", "ep1", "-p", "local"], env)
    assert result.exit_code == 0, result.stderr
    assert server.calls()[0].headers["authorization"] == "Bearer tok-local"
    # the group accepts the global flags too
    result = run(serving_endpoints, ["--profile", "local", "get", "ep1"], env)
    assert result.exit_code == 0, result.stderr


def test_cli_uses_home_databrickscfg_via_env_profile(server: RecordingServer, tmp_path: Path) -> None:
    from ladle.cli.serving_endpoints import serving_endpoints

    _write_cfg(tmp_path / ".databrickscfg", server.url)
    server.on("GET", "/api/2.0/serving-endpoints/ep1", Reply(body=endpoint()))
    result = run(serving_endpoints, ["get", "ep1"], base_env(tmp_path, DATABRICKS_CONFIG_PROFILE="local"))
    assert result.exit_code == 0, result.stderr
    assert server.calls()[0].headers["authorization"] == "Bearer tok-local"


def test_cli_missing_config_message(tmp_path: Path) -> None:
    from ladle.cli.serving_endpoints import serving_endpoints

    result = run(serving_endpoints, ["get", "ep1"], base_env(tmp_path))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no host configured: set DATABRICKS_HOST and DATABRICKS_TOKEN")


def test_debug_logs_requests(server: RecordingServer, tmp_path: Path) -> None:
    from ladle.cli.serving_endpoints import serving_endpoints

    server.on("GET", "/api/2.0/serving-endpoints/ep1", Reply(body=endpoint()))
    env = base_env(tmp_path, DATABRICKS_HOST=server.url, DATABRICKS_TOKEN="t")
    result = run(serving_endpoints, ["get", "ep1", "--debug"], env)
    assert result.exit_code == 0
    assert f"> GET {server.url}/api/2.0/serving-endpoints/ep1" in result.stderr
    assert "< 200 OK" in result.stderr
    assert json.loads(result.stdout)["name"] == "ep1"


def test_prune_drops_empties_but_keeps_false_and_zero() -> None:
    from ladle.cli.output import prune

    value = {"a": None, "b": "", "c": [], "d": {}, "e": False, "f": 0, "g": {"h": {"i": None}}, "j": [{"k": ""}, 1]}
    assert prune(value) == {"e": False, "f": 0, "j": [{}, 1]}
