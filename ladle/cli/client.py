"""HTTP client for the CLI, and host/token resolution like the Databricks SDK and CLI.

Resolution order (reference §4):
- `-p/--profile NAME` given: host and token come from that profile of the config file only.
- otherwise `DATABRICKS_HOST` / `DATABRICKS_TOKEN` from the environment win, and the config file
  (`DATABRICKS_CONFIG_FILE` or `~/.databrickscfg`) fills what they leave unset, from the profile
  named by `DATABRICKS_CONFIG_PROFILE`, else `[__settings__] default_profile`, else `DEFAULT`.
A host without a scheme gets `https://`; a trailing slash is stripped. A missing token is allowed
(a server running without authentication); a missing host is an error.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import click
import httpx

from ladle.cli.options import settings

DEFAULT_TIMEOUT_S = 120.0
CONNECT_TIMEOUT_S = 10.0
_META_CLIENT = "ladle.cli.client"
_NO_DEFAULT_SECTION = "\x00no-default\x00"
_HELP = (
    "set DATABRICKS_HOST and DATABRICKS_TOKEN, or configure a profile in ~/.databrickscfg "
    "(choose it with --profile or DATABRICKS_CONFIG_PROFILE)"
)


class ConfigError(click.ClickException):
    """Host/token could not be resolved."""


class ApiError(click.ClickException):
    """A non-2xx answer from the server; prints `Error: <message>` and exits 1."""

    def __init__(self, status: int, message: str, error_code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


@dataclass(frozen=True)
class ClientConfig:
    host: str
    token: str | None
    source: str


def seg(value: str) -> str:
    """Escape one path segment (endpoint names are plain, but never let `/` or `..` through)."""
    return quote(str(value), safe="")


def normalize_host(host: str) -> str:
    host = host.strip()
    if "://" not in host:
        host = "https://" + host
    return host.rstrip("/")


def resolve_config(profile: str | None = None, env: Mapping[str, str] | None = None) -> ClientConfig:
    env = os.environ if env is None else env
    if profile:
        attrs = _read_profile(env, profile, explicit=True)
        source = f"profile {profile}"
    else:
        attrs = {"host": env.get("DATABRICKS_HOST") or None, "token": env.get("DATABRICKS_TOKEN") or None}
        source = "environment"
        env_profile = env.get("DATABRICKS_CONFIG_PROFILE") or None
        if env_profile or not (attrs["host"] and attrs["token"]):
            from_file = _read_profile(env, env_profile, explicit=bool(env_profile))
            if from_file and not attrs["host"]:
                source = f"profile {from_file['__name__']}"
            for key in ("host", "token"):
                if not attrs[key] and from_file.get(key):
                    attrs[key] = from_file[key]
    if not attrs.get("host"):
        raise ConfigError(f"no host configured: {_HELP}")
    return ClientConfig(host=normalize_host(attrs["host"]), token=attrs.get("token") or None, source=source)


def config_file_path(env: Mapping[str, str]) -> str:
    path = env.get("DATABRICKS_CONFIG_FILE") or "~/.databrickscfg"
    if path == "~" or path.startswith("~/"):
        home = env.get("HOME") or os.path.expanduser("~")
        path = os.path.join(home, path[2:])
    return path


def _read_profile(env: Mapping[str, str], name: str | None, *, explicit: bool) -> dict[str, str]:
    """The named (or default) profile's keys plus `__name__`; {} when absent and not required."""
    path = config_file_path(env)
    if not os.path.exists(path):
        if explicit:
            raise ConfigError(f"cannot load profile {name!r}: config file {path} does not exist; {_HELP}")
        return {}
    parser = configparser.ConfigParser(default_section=_NO_DEFAULT_SECTION, interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot parse config file {path}: {exc}") from exc
    if name is None and parser.has_option("__settings__", "default_profile"):
        name = parser.get("__settings__", "default_profile").strip()
        explicit = True
    name = name or "DEFAULT"
    if not parser.has_section(name):
        if explicit:
            raise ConfigError(f"profile {name!r} not found in {path}")
        return {}
    values = {k: v.strip() for k, v in parser.items(name)}
    values["__name__"] = name
    return values


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ladle")
    except PackageNotFoundError:
        return "0.0.0"


def error_message(response: httpx.Response) -> tuple[str, str | None]:
    """The message and error_code of a non-2xx answer (reference §3 parsing order)."""
    text = response.text.strip()
    if text:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            code = body.get("error_code")
            msg = body.get("message") or body.get("error") or body.get("detail")
            if msg:
                return str(msg), code
            if code:
                return str(code), code
        else:
            return text.splitlines()[0][:500], None
    return response.reason_phrase or f"HTTP {response.status_code}", None


class ApiClient:
    """A thin synchronous client: auth header, UA, errors as ApiError/ClickException."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        debug: bool = False,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"User-Agent": f"ladle-cli/{_version()}"}
        if config.token:
            headers["Authorization"] = f"Bearer {config.token}"
        hooks = {"request": [self._log_request], "response": [self._log_response]} if debug else {}
        self.config = config
        self._http = httpx.Client(
            base_url=config.host,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_S)),
            transport=transport,
            event_hooks=hooks,
        )
        self._timeout = timeout

    def close(self) -> None:
        self._http.close()

    def request(
        self, method: str, path: str, body: Any = None, *, accept: str = "application/json"
    ) -> httpx.Response:
        with self._errors(method, path):
            response = self._http.request(method, path, json=body, headers={"Accept": accept})
        self._raise_for_status(response)
        return response

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """Send JSON, return the decoded JSON answer (None for an empty body)."""
        response = self.request(method, path, body)
        if not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise click.ClickException(f"{method} {path}: the server answered non-JSON content") from exc

    @contextmanager
    def stream(self, method: str, path: str, body: Any = None) -> Iterator[httpx.Response]:
        with self._errors(method, path):
            with self._http.stream(method, path, json=body, headers={"Accept": "application/json"}) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    self._raise_for_status(resp)
                yield resp

    @contextmanager
    def _errors(self, method: str, path: str) -> Iterator[None]:
        try:
            yield
        except httpx.TimeoutException as exc:
            raise click.ClickException(
                f"{method} {self.config.host}{path}: timed out after {self._timeout:g}s ({type(exc).__name__})"
            ) from exc
        except httpx.HTTPError as exc:
            raise click.ClickException(
                f"cannot reach {self.config.host} ({exc or type(exc).__name__}); is the ladle server running?"
            ) from exc

    @staticmethod
    def _raise_for_status(response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        message, code = error_message(response)
        raise ApiError(response.status_code, message, code)

    @staticmethod
    def _log_request(request: httpx.Request) -> None:
        click.echo(f"> {request.method} {request.url}", err=True)

    @staticmethod
    def _log_response(response: httpx.Response) -> None:
        click.echo(f"< {response.status_code} {response.reason_phrase}", err=True)


def from_context(ctx: click.Context) -> ApiClient:
    """The command's client, built once per invocation from the global flags and environment."""
    client = ctx.meta.get(_META_CLIENT)
    if client is None:
        opts = settings(ctx)
        config = resolve_config(opts.profile)
        client = ApiClient(config, debug=opts.debug)
        ctx.meta[_META_CLIENT] = client
        ctx.find_root().call_on_close(client.close)
    return client
