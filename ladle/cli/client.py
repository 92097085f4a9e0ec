"""HTTP client for the CLI. Host and credentials come from ladle/cli/auth_config.py (the SDK's
unified order); a command that cannot resolve them fails before any request is sent, and every
request carries the resolved token (never an empty or absent Authorization header).

With logging on (`--debug`, `--log-level debug`) each request is logged as its method, URL,
status and duration: never its headers or body.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import click
import httpx

from ladle.cli.auth_config import (  # noqa: F401 - re-exported for the command modules and tests
    ClientConfig,
    ConfigError,
    config_file_path,
    normalize_host,
    resolve_config,
)
from ladle.cli.options import cli_version, log_session, settings

DEFAULT_TIMEOUT_S = 120.0
CONNECT_TIMEOUT_S = 10.0
_META_CLIENT = "ladle.cli.client"
ME = "/api/2.0/preview/scim/v2/Me"
http_log = logging.getLogger("ladle.cli.http")


class ApiError(click.ClickException):
    """A non-2xx answer from the server; prints `Error: <message>` and exits 1."""

    def __init__(self, status: int, message: str, error_code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


def seg(value: str) -> str:
    """Escape one path segment (endpoint names are plain, but never let `/` or `..` through)."""
    return quote(str(value), safe="")


def error_message(response: httpx.Response) -> tuple[str, str | None]:
    """The message and error_code of a non-2xx answer, read as the Databricks CLI reads them:
    `message` (else `error`, else `detail`) and `error_code` of a JSON body; else the first line
    of a text body; else the status's reason phrase."""
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
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not config.token:
            raise ConfigError("cannot configure default credentials: no token")  # resolve_config guarantees one
        headers = {"User-Agent": f"ladle-cli/{cli_version()} auth/{config.auth_type}"}
        hooks = {"request": [self._log_request], "response": [self._log_response]}
        self.config = config
        self._http = httpx.Client(
            base_url=config.host,
            headers=headers,
            auth=_BearerAuth(config),
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
        request.extensions["ladle_started"] = time.monotonic()
        http_log.debug("> %s %s", request.method, request.url)

    @staticmethod
    def _log_response(response: httpx.Response) -> None:
        started = response.request.extensions.get("ladle_started")
        took = f" in {(time.monotonic() - started) * 1000:.0f} ms" if started else ""
        http_log.debug("< %s %s%s", response.status_code, response.reason_phrase, took)


class _BearerAuth(httpx.Auth):
    """`Authorization: Bearer <token>` on every request; with an OAuth credential, a 401 gets one
    retry with a renewed token (an access token can expire during a long wait)."""

    def __init__(self, config: ClientConfig) -> None:
        self._token = config.token
        self._renew = config.renew

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code == 401 and self._renew is not None:
            try:
                self._token = self._renew()
            except Exception as exc:  # noqa: BLE001 - keep the server's 401 as the answer
                http_log.debug("auth: cannot renew the token: %s", type(exc).__name__)
                return
            request.headers["Authorization"] = f"Bearer {self._token}"
            yield request


def get_or_none(client: ApiClient, path: str) -> Any:
    """GET `path`: its JSON (`{}` for an empty body), or None when the server answers 404."""
    try:
        return client.call("GET", path) or {}
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def delete_if_present(client: ApiClient, path: str) -> None:
    """DELETE `path`; already gone (404) is fine."""
    try:
        client.call("DELETE", path)
    except ApiError as exc:
        if exc.status != 404:
            raise


def current_user(client: ApiClient) -> str:
    """The caller's user name, from SCIM /Me."""
    me = client.call("GET", ME) or {}
    name = me.get("userName")
    if not name:
        raise click.ClickException("cannot tell who you are: /Me answered no userName")
    return str(name)


def from_context(ctx: click.Context) -> ApiClient:
    """The command's client, built once per invocation from the global flags and environment."""
    client = ctx.meta.get(_META_CLIENT)
    if client is None:
        opts = settings(ctx)
        config = resolve_config(opts.profile)
        session = log_session(ctx)
        if session is not None:
            session.add_secrets(config.secrets())
        http_log.debug("auth: %s from %s", config.auth_type, ", ".join(
            f"{key} ({source})" for key, source in config.sources.items()))
        client = ApiClient(config)
        ctx.meta[_META_CLIENT] = client
        ctx.find_root().call_on_close(client.close)
    return client
