"""`ladle configure` and `ladle auth`: the config-file writer, the token cache, login with PKCE,
token refresh, M2M and databricks-cli resolution, against a recording fake of the /oidc routes."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

try:
    from .cli_fakes import RecordingServer, Reply, _recording_server, base_env, run, server  # noqa: F401
except ImportError:  # tests/unit is not a package
    from cli_fakes import RecordingServer, Reply, _recording_server, base_env, run, server  # noqa: F401

from ladle.cli import cfg_file
from ladle.cli.auth_cache import Token, TokenCache, go_time, parse_go_time
from ladle.cli.auth_config import ConfigError, resolve_config

DISCOVERY = "/oidc/.well-known/oauth-authorization-server"
TOKEN_PATH = "/oidc/v1/token"


def oidc(server: RecordingServer, *token_replies: Reply) -> None:
    server.on("GET", DISCOVERY, Reply(200, {"issuer": f"{server.url}/oidc",
                                            "authorization_endpoint": f"{server.url}/oidc/v1/authorize",
                                            "token_endpoint": f"{server.url}{TOKEN_PATH}"}))
    if token_replies:
        server.on("POST", TOKEN_PATH, *token_replies)


def form(recorded) -> dict[str, str]:  # noqa: ANN001
    return {k: v[0] for k, v in parse_qs(recorded.body.decode()).items()}


def cli():  # noqa: ANN201
    from ladle.cli.main import _register, cli as root

    _register()
    return root


def ladle(args: list[str], env: dict, input: str | None = None):  # noqa: ANN201, A002
    return run(cli(), args, env, input=input)


# -- the config file ---------------------------------------------------------------------
def test_save_profile_keeps_comments_and_other_profiles(tmp_path: Path) -> None:
    path = tmp_path / "cfg"
    path.write_text("# mine\n[keep]\nhost = http://k\ntoken = kk ; note\n\n[dev]\nhost = http://old\ntoken = t\n"
                    "client_id = x\n")
    cfg_file.save_profile(path, "dev", {"host": "http://new", "auth_type": "databricks-cli"})
    text = path.read_text()
    assert text.startswith("# mine\n[keep]\nhost = http://k\ntoken = kk ; note\n\n[dev]\n")
    assert dict(cfg_file.profiles(cfg_file.load(path)))["dev"] == {"host": "http://new", "auth_type": "databricks-cli"}
    assert "__settings__" not in text  # [keep] already had a host: no default is chosen
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert (tmp_path / "cfg.bak").read_text().endswith("client_id = x\n")


def test_first_profile_becomes_the_default_and_delete_clears_it(tmp_path: Path) -> None:
    path = tmp_path / "new" / "cfg"
    cfg_file.save_profile(path, "dev", {"host": "http://h", "token": "t"})
    assert path.read_text().startswith("; The profile defined in the DEFAULT section is to be used as a fallback")
    assert cfg_file.configured_default(cfg_file.load(path)) == "dev"
    cfg_file.delete_profile(path, "dev")
    assert cfg_file.configured_default(cfg_file.load(path)) == ""
    assert [name for name, _ in cfg_file.profiles(cfg_file.load(path))] == ["DEFAULT"]
    with pytest.raises(cfg_file.ConfigFileError, match="reserved"):
        cfg_file.save_profile(path, "__settings__", {"host": "h"})


# -- the token cache -----------------------------------------------------------------------
def test_cache_file_format_and_modes(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path / ".databricks" / "token-cache.json")
    expiry = datetime(2026, 12, 5, 2, 3, 4, 500000, tzinfo=timezone.utc)
    cache.put(Token("at", "Bearer", "rt", expiry), "dev", "http://h")
    data = json.loads(cache.path.read_text())
    assert data == {"version": 1, "tokens": {k: {"access_token": "at", "token_type": "Bearer", "refresh_token": "rt",
                                                 "expiry": go_time(expiry)} for k in ("dev", "http://h")}}
    assert stat.S_IMODE(os.stat(cache.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(cache.path.parent).st_mode) == 0o700
    assert cache.lookup("nope", "http://h")[0] == "http://h"
    assert cache.delete("dev", "absent") == ["dev"]
    assert list(json.loads(cache.path.read_text())["tokens"]) == ["http://h"]


def test_go_time_round_trip() -> None:
    assert parse_go_time("2026-12-05T02:03:04.123456789+01:00") == datetime(2026, 12, 5, 1, 3, 4, 123456,
                                                                           tzinfo=timezone.utc)
    value = datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=timezone.utc)
    assert parse_go_time(go_time(value)) == value
    assert go_time(value).endswith(("Z", "+00:00")) or go_time(value)[-6] in "+-"


def test_a_corrupt_cache_is_an_error_not_an_empty_cache(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"version": 7, "tokens": {}}')
    with pytest.raises(Exception, match="version 1"):
        TokenCache(path).lookup("x")


# -- configure -----------------------------------------------------------------------------
def test_configure_reads_the_token_from_stdin(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    result = ladle(["configure", "--host", "127.0.0.1:9/some/path", "-p", "dev"], env, input="dapi-xyz\n")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    profiles = dict(cfg_file.profiles(cfg_file.load(tmp_path / ".databrickscfg")))
    assert profiles["dev"] == {"host": "https://127.0.0.1:9", "token": "dapi-xyz"}
    assert stat.S_IMODE(os.stat(tmp_path / ".databrickscfg").st_mode) == 0o600


def test_configure_respects_the_config_file_env_and_needs_a_host(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.cfg"
    env = base_env(tmp_path, DATABRICKS_CONFIG_FILE=str(target))
    missing = ladle(["configure"], env, input="tok\n")
    assert missing.exit_code == 1 and "host must be set in non-interactive mode" in missing.stderr
    empty = ladle(["configure", "--host", "http://h:1"], env, input="")
    assert empty.exit_code == 1 and "token from stdin" in empty.stderr and not target.exists()
    assert ladle(["configure", "--host", "http://h:1"], env, input="tok\n").exit_code == 0
    assert dict(cfg_file.profiles(cfg_file.load(target)))["DEFAULT"] == {"host": "http://h:1", "token": "tok"}


# -- login ---------------------------------------------------------------------------------
def _fake_browser(monkeypatch: pytest.MonkeyPatch, seen: dict, *, state: str | None = None) -> None:
    """Stands in for the user's browser: signs in and follows the redirect to the loopback."""

    def open_(url: str) -> bool:
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        seen.update(query)
        target = f"{query['redirect_uri']}?code=the-code&state={state or query['state']}"
        seen["callback_status"] = httpx.get(target).status_code
        return True

    monkeypatch.setattr("webbrowser.open", open_)


def test_login_pkce_caches_tokens_and_writes_the_profile(server: RecordingServer, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    oidc(server, Reply(200, {"access_token": "at-1", "token_type": "bearer", "expires_in": 3600,
                             "refresh_token": "rt-1", "scope": "all-apis offline_access"}))
    seen: dict = {}
    _fake_browser(monkeypatch, seen)
    env = base_env(tmp_path, LADLE_AUTH_REDIRECT_PORT="0")
    result = ladle(["auth", "login", "--host", server.url, "--profile", "dev"], env)
    assert result.exit_code == 0, result.output
    assert "Profile dev was successfully saved" in result.stderr
    assert f"{server.url}/oidc/v1/authorize?" in result.stderr  # the URL is always printed
    assert seen["client_id"] == "databricks-cli" and seen["code_challenge_method"] == "S256"
    assert seen["scope"] == "all-apis offline_access" and seen["callback_status"] == 200
    sent = form(server.calls("POST", TOKEN_PATH)[0])
    assert sent["grant_type"] == "authorization_code" and sent["code"] == "the-code"
    challenge = base64.urlsafe_b64encode(hashlib.sha256(sent["code_verifier"].encode()).digest()).rstrip(b"=")
    assert challenge.decode() == seen["code_challenge"]
    assert sent["redirect_uri"] == seen["redirect_uri"]
    tokens = json.loads((tmp_path / ".databricks" / "token-cache.json").read_text())["tokens"]
    assert set(tokens) == {"dev", server.url} and tokens["dev"]["refresh_token"] == "rt-1"
    profile = dict(cfg_file.profiles(cfg_file.load(tmp_path / ".databrickscfg")))["dev"]
    assert profile["host"] == server.url and profile["auth_type"] == "databricks-cli"
    assert Path(profile["databricks_cli_path"]).name.startswith("ladle")


def test_login_refuses_a_callback_with_another_state(server: RecordingServer, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    oidc(server, Reply(200, {"access_token": "never"}))
    seen: dict = {}
    _fake_browser(monkeypatch, seen, state="forged")
    result = ladle(["auth", "login", "--host", server.url, "-p", "dev"], base_env(tmp_path, LADLE_AUTH_REDIRECT_PORT="0"))
    assert result.exit_code == 1 and "state does not match" in result.stderr
    assert seen["callback_status"] == 400 and not server.calls("POST", TOKEN_PATH)
    assert not (tmp_path / ".databrickscfg").exists()


# -- token, resolution ------------------------------------------------------------------------
def _logged_in(tmp_path: Path, host: str, expiry: datetime, profile: str = "dev") -> None:
    cfg_file.save_profile(tmp_path / ".databrickscfg", profile, {"host": host, "auth_type": "databricks-cli"})
    TokenCache(tmp_path / ".databricks" / "token-cache.json").put(Token("at-old", "Bearer", "rt-old", expiry),
                                                                  profile, host)


def test_token_prints_the_cached_token_and_refreshes_an_expired_one(server: RecordingServer, tmp_path: Path) -> None:
    future = datetime.now(timezone.utc) + timedelta(hours=1)
    _logged_in(tmp_path, server.url, future)
    env = base_env(tmp_path)
    fresh = ladle(["auth", "token", "-p", "dev"], env)
    assert fresh.exit_code == 0, fresh.output
    assert json.loads(fresh.stdout) == {"access_token": "at-old", "token_type": "Bearer", "expiry": go_time(future)}
    assert not server.calls()
    _logged_in(tmp_path, server.url, datetime.now(timezone.utc) - timedelta(minutes=1))
    oidc(server, Reply(200, {"access_token": "at-new", "token_type": "Bearer", "expires_in": 3600,
                             "refresh_token": "rt-new"}))
    refreshed = ladle(["auth", "token", "--host", server.url], env)
    assert refreshed.exit_code == 0, refreshed.output
    assert json.loads(refreshed.stdout)["access_token"] == "at-new"
    assert form(server.calls("POST", TOKEN_PATH)[0]) == {"grant_type": "refresh_token", "refresh_token": "rt-old",
                                                         "client_id": "databricks-cli"}
    tokens = json.loads((tmp_path / ".databricks" / "token-cache.json").read_text())["tokens"]
    assert tokens["dev"]["refresh_token"] == tokens[server.url]["refresh_token"] == "rt-new"
    text = ladle(["auth", "token", "-p", "dev", "-o", "text"], env)
    assert text.stdout == "at-new\n"


def test_token_without_a_login_says_what_the_sdks_look_for(tmp_path: Path) -> None:
    result = ladle(["auth", "token", "--host", "http://127.0.0.1:9"], base_env(tmp_path))
    assert result.exit_code == 1
    assert "cache: databricks OAuth is not configured for this host" in result.stderr
    assert "ladle auth login --host http://127.0.0.1:9" in result.stderr


def test_a_refused_refresh_asks_to_log_in_again(server: RecordingServer, tmp_path: Path) -> None:
    _logged_in(tmp_path, server.url, datetime.now(timezone.utc) - timedelta(minutes=1))
    oidc(server, Reply(400, {"error": "invalid_grant", "error_description": "refresh token revoked"}))
    result = ladle(["auth", "token", "-p", "dev"], base_env(tmp_path))
    assert result.exit_code == 1
    assert "invalid_grant: refresh token revoked" in result.stderr and "ladle auth login" in result.stderr


def test_databricks_cli_profile_resolves_to_the_cached_token(server: RecordingServer, tmp_path: Path) -> None:
    _logged_in(tmp_path, server.url, datetime.now(timezone.utc) + timedelta(hours=1))
    cfg = resolve_config("dev", {"HOME": str(tmp_path)})
    assert (cfg.host, cfg.token, cfg.auth_type) == (server.url, "at-old", "databricks-cli")
    with pytest.raises(ConfigError, match="^databricks-cli auth: cache: databricks OAuth is not configured"):
        (tmp_path / ".databricks" / "token-cache.json").unlink()
        resolve_config("dev", {"HOME": str(tmp_path)})


def test_m2m_gets_a_token_with_client_credentials(server: RecordingServer, tmp_path: Path) -> None:
    oidc(server, Reply(200, {"access_token": "m2m-at", "token_type": "Bearer", "expires_in": 3600}))
    env = {"HOME": str(tmp_path), "DATABRICKS_HOST": server.url, "DATABRICKS_CLIENT_ID": "app-1",
           "DATABRICKS_CLIENT_SECRET": "s3cret"}
    cfg = resolve_config(None, env)
    assert (cfg.token, cfg.auth_type) == ("m2m-at", "oauth-m2m") and "s3cret" in cfg.secrets()
    call = server.calls("POST", TOKEN_PATH)[0]
    assert call.headers["authorization"] == "Basic " + base64.b64encode(b"app-1:s3cret").decode()
    assert form(call) == {"grant_type": "client_credentials", "scope": "all-apis"}
    oidc(server, Reply(401, {"error": "invalid_client", "error_description": "bad secret"}))
    with pytest.raises(ConfigError, match="^oauth-m2m auth: oauth-m2m: invalid_client: bad secret") as err:
        resolve_config(None, env)
    assert "s3cret" not in str(err.value)


# -- profiles, switch, logout, describe, env ------------------------------------------------------
def test_profiles_switch_logout(server: RecordingServer, tmp_path: Path) -> None:
    _logged_in(tmp_path, server.url, datetime.now(timezone.utc) + timedelta(hours=1))
    cfg_file.save_profile(tmp_path / ".databrickscfg", "pat", {"host": "http://127.0.0.1:9", "token": "t"})
    server.on("GET", "/api/2.0/preview/scim/v2/Me", Reply(200, {"userName": "alice"}))
    env = base_env(tmp_path)
    listed = ladle(["auth", "profiles", "-o", "json"], env)
    assert json.loads(listed.stdout) == {"profiles": [
        {"name": "dev", "host": server.url, "cloud": "aws", "auth_type": "databricks-cli", "valid": True, "default": True},
        {"name": "pat", "host": "http://127.0.0.1:9", "cloud": "aws", "auth_type": "pat", "valid": False}]}
    assert server.calls("GET", "/api/2.0/preview/scim/v2/Me")[0].headers["authorization"] == "Bearer at-old"
    switched = ladle(["auth", "switch", "-p", "pat"], env)
    assert switched.exit_code == 0 and 'Default profile set to "pat".' in switched.stderr
    table = ladle(["auth", "profiles", "--skip-validate"], env).stdout.splitlines()
    assert table[0].split() == ["Name", "Host", "Valid"] and table[2].startswith("pat (Default)")
    assert "not found" in ladle(["auth", "switch", "-p", "nope"], env).stderr
    refused = ladle(["auth", "logout", "-p", "dev"], env)
    assert refused.exit_code == 1 and "--auto-approve" in refused.stderr
    out = ladle(["auth", "logout", "-p", "dev", "--auto-approve"], env)
    assert 'Logged out of profile "dev". Use --delete' in out.stderr
    assert json.loads((tmp_path / ".databricks" / "token-cache.json").read_text())["tokens"] == {}
    assert "dev" in dict(cfg_file.profiles(cfg_file.load(tmp_path / ".databrickscfg")))
    gone = ladle(["auth", "logout", "-p", "pat", "--auto-approve", "--delete"], env)
    assert 'Deleted profile "pat" with no tokens to clear.' in gone.stderr
    assert cfg_file.configured_default(cfg_file.load(tmp_path / ".databrickscfg")) == ""


def test_describe_masks_secrets_and_names_sources(server: RecordingServer, tmp_path: Path) -> None:
    server.on("GET", "/api/2.0/preview/scim/v2/Me", Reply(200, {"userName": "alice"}))
    cfg_file.save_profile(tmp_path / ".databrickscfg", "pat", {"host": server.url, "token": "dapi-secret"})
    env = base_env(tmp_path)
    text = ladle(["auth", "describe", "-p", "pat"], env)
    assert text.exit_code == 0, text.output
    path = tmp_path / ".databrickscfg"
    assert text.stdout.splitlines()[:5] == [f"Host: {server.url}", "User: alice", "Authenticated with: pat", "-----",
                                            "Current configuration:"]
    assert f"  ✓ token: ******** (from {path} config file)" in text.stdout
    assert "  ✓ profile: pat (from --profile flag)" in text.stdout and "dapi-secret" not in text.stdout
    data = json.loads(ladle(["auth", "describe", "-p", "pat", "-o", "json", "--sensitive"], env).stdout)
    assert data["details"]["configuration"]["token"] == {"value": "dapi-secret", "source": {"type": "file", "name": str(path)}}
    env_out = ladle(["auth", "env", "-p", "pat"], env)
    assert json.loads(env_out.stdout) == {"env": {"DATABRICKS_AUTH_TYPE": "pat", "DATABRICKS_CONFIG_PROFILE": "pat",
                                                  "DATABRICKS_HOST": server.url, "DATABRICKS_TOKEN": "dapi-secret"}}
    server.on("GET", "/api/2.0/preview/scim/v2/Me", Reply(401, {"error_code": "UNAUTHENTICATED", "message": "bad token"}))
    failed = ladle(["auth", "describe", "-p", "pat"], env)
    assert failed.stdout.startswith("Unable to authenticate: bad token\n-----\n")


def test_a_token_refused_mid_command_is_renewed_once(server: RecordingServer, tmp_path: Path) -> None:
    _logged_in(tmp_path, server.url, datetime.now(timezone.utc) + timedelta(hours=1))
    oidc(server, Reply(200, {"access_token": "at-new", "token_type": "Bearer", "expires_in": 3600,
                             "refresh_token": "rt-new"}))
    path = "/api/2.0/token-management/tokens"
    server.on("GET", path, Reply(401, {"error_code": "UNAUTHENTICATED", "message": "expired"}),
              Reply(200, {"token_infos": [{"token_id": "t1"}]}))
    result = ladle(["tokens", "list", "-p", "dev"], base_env(tmp_path))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"token_id": "t1"}]
    assert [c.headers["authorization"] for c in server.calls("GET", path)] == ["Bearer at-old", "Bearer at-new"]
    server.on("GET", path, Reply(401, {"error_code": "UNAUTHENTICATED", "message": "no such user"}))
    refused = ladle(["tokens", "list", "-p", "dev"], base_env(tmp_path))
    assert refused.exit_code == 1 and "no such user" in refused.stderr
    assert len(server.calls("GET", path)) == 4  # one retry per command, never a loop


@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_the_sdk_reads_our_expiry_as_local_wall_clock(tz: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's CLI token source drops the offset and compares with the naive local clock."""
    import time

    from databricks.sdk.credentials_provider import CliTokenSource

    monkeypatch.setenv("TZ", tz)
    time.tzset()
    try:
        expiry = datetime(2026, 12, 5, 2, 3, 4, 250000, tzinfo=timezone.utc)
        parsed = CliTokenSource._parse_expiry(go_time(expiry))
        assert parsed == expiry.astimezone().replace(tzinfo=None, microsecond=0)
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("command", ["login", "token"])
def test_a_positional_profile_goes_with_neither_host_nor_profile_flag(command: str, tmp_path: Path) -> None:
    result = ladle(["auth", command, "dev", "--host", "http://127.0.0.1:9"], base_env(tmp_path))
    assert result.exit_code == 1
    assert 'argument "dev" cannot be combined with --host or --profile' in result.stderr
