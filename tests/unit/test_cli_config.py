"""Host/token resolution (env, ~/.databrickscfg profiles) and output pruning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

try:
    from .cli_fakes import RecordingServer, Reply, _recording_server, base_env, endpoint, run, server  # noqa: F401
except ImportError:  # tests/unit is not a package
    from cli_fakes import RecordingServer, Reply, _recording_server, base_env, endpoint, run, server  # noqa: F401

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


def test_env_wins_without_profile_and_the_file_is_not_read(tmp_path: Path) -> None:
    _write_cfg(tmp_path / ".databrickscfg")
    cfg = resolve_config(None, {"HOME": str(tmp_path), "DATABRICKS_HOST": "http://h:1/", "DATABRICKS_TOKEN": "t"})
    assert (cfg.host, cfg.token, cfg.config_file) == ("http://h:1", "t", None)
    assert cfg.sources == {"host": "DATABRICKS_HOST environment variable",
                           "token": "DATABRICKS_TOKEN environment variable"}


def test_default_profile_from_home(tmp_path: Path) -> None:
    _write_cfg(tmp_path / ".databrickscfg")
    cfg = resolve_config(None, {"HOME": str(tmp_path)})
    assert (cfg.host, cfg.token) == ("https://default.example.com", "tok-default")
    assert cfg.sources["token"] == "~/.databrickscfg profile DEFAULT"


def test_named_profile_does_not_inherit_default(tmp_path: Path) -> None:
    cfg_file = tmp_path / "cfg"
    cfg_file.write_text("[DEFAULT]\ntoken = tok-default\n\n[nohost]\nhost = http://x:1\n")
    with pytest.raises(ConfigError, match="^cannot configure default credentials.*No token is configured for http://x"):
        resolve_config("nohost", {"DATABRICKS_CONFIG_FILE": str(cfg_file)})


def test_explicit_profile_wins_over_env(tmp_path: Path) -> None:
    _write_cfg(tmp_path / ".databrickscfg")
    env = {"HOME": str(tmp_path), "DATABRICKS_HOST": "http://h:1", "DATABRICKS_TOKEN": "t",
           "DATABRICKS_CONFIG_PROFILE": "DEFAULT"}
    cfg = resolve_config("local", env)
    assert (cfg.host, cfg.token, cfg.profile) == ("http://127.0.0.1:1", "tok-local", "local")
    assert cfg.sources["profile"] == "--profile flag"


def test_profile_from_env_and_settings(tmp_path: Path) -> None:
    cfg_file = _write_cfg(tmp_path / "cfg")
    cfg = resolve_config(None, {"DATABRICKS_CONFIG_FILE": str(cfg_file), "DATABRICKS_CONFIG_PROFILE": "local"})
    assert cfg.token == "tok-local"
    cfg_file.write_text(cfg_file.read_text() + "\n[__settings__]\ndefault_profile = local\n")
    assert resolve_config(None, {"DATABRICKS_CONFIG_FILE": str(cfg_file)}).token == "tok-local"
    # the flag wins over [__settings__]
    assert resolve_config("DEFAULT", {"DATABRICKS_CONFIG_FILE": str(cfg_file)}).token == "tok-default"


def test_env_fills_over_the_env_named_profile(tmp_path: Path) -> None:
    """DATABRICKS_CONFIG_PROFILE: the environment's values win over the profile's (the SDK's merge)."""
    cfg_file = _write_cfg(tmp_path / "cfg", "http://127.0.0.1:2")
    env = {"DATABRICKS_CONFIG_FILE": str(cfg_file), "DATABRICKS_CONFIG_PROFILE": "local", "DATABRICKS_TOKEN": "t-env"}
    cfg = resolve_config(None, env)
    assert (cfg.host, cfg.token) == ("http://127.0.0.1:2", "t-env")
    assert cfg.sources["host"].endswith("cfg profile local")
    assert cfg.sources["token"] == "DATABRICKS_TOKEN environment variable"


@pytest.mark.parametrize("env_key", ["DATABRICKS_HOST", "DATABRICKS_TOKEN"])
def test_half_configured_env_does_not_borrow_from_the_default_profile(tmp_path: Path, env_key: str) -> None:
    """As the SDK: a host or a credential in the environment and no profile named: the file is skipped."""
    _write_cfg(tmp_path / ".databrickscfg")
    with pytest.raises(ConfigError, match="^cannot configure default credentials") as err:
        resolve_config(None, {"HOME": str(tmp_path), env_key: "http://h:2"})
    assert f"Env: {env_key}" in str(err.value)
    assert "tok-default" not in str(err.value)


def test_nothing_configured_message(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_config(None, {"HOME": str(tmp_path)})
    message = str(err.value)
    assert message.startswith(
        "cannot configure default credentials, please check "
        "https://docs.databricks.com/en/dev-tools/auth.html#databricks-client-unified-authentication"
    )
    assert "No host is configured: use --profile NAME" in message
    assert "authenticate first" in message


def test_missing_profiles(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="^cannot configure default credentials.*does not exist"):
        resolve_config("nope", {"HOME": str(tmp_path)})
    _write_cfg(tmp_path / ".databrickscfg")
    with pytest.raises(ConfigError, match=r"has no nope profile configured \(profiles there: DEFAULT, local\)"):
        resolve_config("nope", {"HOME": str(tmp_path)})
    with pytest.raises(ConfigError, match="has no nope profile configured"):
        resolve_config(None, {"HOME": str(tmp_path), "DATABRICKS_CONFIG_PROFILE": "nope"})
    with pytest.raises(ConfigError, match="reserved section name"):
        resolve_config("__settings__", {"HOME": str(tmp_path)})


def test_two_auth_methods_and_unsupported_auth_types(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "DATABRICKS_HOST": "http://h:1", "DATABRICKS_TOKEN": "t",
           "DATABRICKS_CLIENT_ID": "sp", "DATABRICKS_CLIENT_SECRET": "s3cr3t"}
    with pytest.raises(ConfigError, match="more than one authorization method configured: oauth and pat") as err:
        resolve_config(None, env)
    assert "s3cr3t" not in str(err.value) and "client_secret=***" in str(err.value)
    with pytest.raises(ConfigError, match="^azure-cli auth: not supported"):
        resolve_config(None, {**env, "DATABRICKS_AUTH_TYPE": "azure-cli"})
    env["DATABRICKS_TOKEN"] = "dapi-secret-value"
    cfg = resolve_config(None, {**env, "DATABRICKS_AUTH_TYPE": "pat"})
    assert cfg.token == "dapi-secret-value" and "dapi-secret-value" not in repr(cfg)


def test_host_is_normalized(tmp_path: Path) -> None:
    cfg = resolve_config(None, {"HOME": str(tmp_path), "DATABRICKS_HOST": " example.com/ ", "DATABRICKS_TOKEN": "t"})
    assert cfg.host == "https://example.com"


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


def test_client_refuses_a_config_without_token(server: RecordingServer) -> None:
    from ladle.cli.client import ApiClient, ClientConfig

    with pytest.raises(ConfigError, match="^cannot configure default credentials"):
        ApiClient(ClientConfig(host=server.url, token=""))
    client = ApiClient(ClientConfig(host=server.url, token="tok-1"))
    try:
        server.on("GET", "/x", Reply(body={}))
        client.call("GET", "/x")
    finally:
        client.close()
    assert [c.headers["authorization"] for c in server.calls()] == ["Bearer tok-1"]
    assert server.calls()[0].headers["user-agent"].endswith(" auth/pat")
