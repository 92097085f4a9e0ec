"""`ladle auth login`: OAuth authorization code + PKCE (S256) for the public client `databricks-cli`.

The URL is printed and opened with Python's `webbrowser` (so `BROWSER` is honoured); the browser
comes back to a one-shot loopback listener on `http://localhost:8020` (`LADLE_AUTH_REDIRECT_PORT`
overrides; 0 = any free port), bound to 127.0.0.1. The tokens go to the token cache under the
profile name and the host; the profile gets `auth_type = databricks-cli` and
`databricks_cli_path` = this `ladle` executable, so the Databricks SDKs' databricks-cli provider
runs `ladle auth token` for it. The listener is the standard library's http.server: one request,
no framework needed.
"""

from __future__ import annotations

import html
import os
import shutil
import sys
import threading
import webbrowser
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import click

from ladle.cli.auth_cache import TokenCache
from ladle.cli.auth_config import config_file_path, normalize_host
from ladle.cli.auth_oauth import AuthorizationCodeFlow, OAuthFailure
from ladle.cli.cfg_file import AUTH_KEYS, ConfigFileError, load, profiles, save_profile
from ladle.cli.options import Duration, LadleCommand, settings

PORT_ENV = "LADLE_AUTH_REDIRECT_PORT"
DEFAULT_PORT = 8020


def cli_executable() -> str | None:
    """The `ladle` entry point to record as databricks_cli_path (None when it cannot be found)."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    candidates = [argv0 if argv0 is not None and argv0.name.startswith("ladle") else None,
                  Path(sys.executable).parent / "ladle", shutil.which("ladle")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(Path(candidate).resolve())
    return None


class _Callback:
    def __init__(self, state: str) -> None:
        self.state = state
        self.code: str | None = None
        self.error: str | None = None
        self.done = threading.Event()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                if not query:  # e.g. /favicon.ico: not the callback
                    self.send_error(404)
                    return
                if query.get("error"):
                    outer.error = f"{query['error']}: {query.get('error_description', '')}".rstrip(": ")
                elif query.get("state") != outer.state:
                    outer.error = "the authorization answer's state does not match this login"
                elif not query.get("code"):
                    outer.error = "the authorization answer has no code"
                else:
                    outer.code = query["code"]
                message = "Authentication failed: " + outer.error if outer.error else (
                    "Authentication complete. You can close this window and return to the terminal.")
                body = f"<!doctype html><title>ladle auth login</title><p>{html.escape(message)}</p>".encode()
                self.send_response(400 if outer.error else 200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                outer.done.set()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - keep quiet
                return

        return Handler


def redirect_port() -> int:
    raw = os.environ.get(PORT_ENV, "").strip()
    if not raw:
        return DEFAULT_PORT
    if not raw.isdigit() or int(raw) > 65535:
        raise click.ClickException(f"{PORT_ENV} must be a port number (0 = any free port), not {raw!r}")
    return int(raw)


def _profile_host(path: Path, name: str) -> str | None:
    try:
        return dict(profiles(load(path))).get(name, {}).get("host") or None
    except ConfigFileError:
        return None


def refuse_positional_with_flags(arg: str | None, host: str | None, profile: str | None) -> None:
    """A positional profile-or-host goes with neither --host nor --profile (as the Databricks CLI)."""
    if arg and (host or profile):
        raise click.ClickException(
            f'argument "{arg}" cannot be combined with --host or --profile. '
            "Use the --host and --profile flags instead")


@click.command("login", cls=LadleCommand)
@click.argument("profile_arg", metavar="[PROFILE]", required=False)
@click.option("--host", metavar="URL", default=None, help="Databricks host.")
@click.option("--timeout", type=Duration(), default="1h", show_default=True,
              help="Timeout for completing login challenge in the browser.")
@click.pass_context
def login(ctx: click.Context, profile_arg: str | None, host: str | None, timeout: float) -> None:
    """Log into a Databricks workspace.

    Opens the workspace's sign-in page in a browser (and prints its URL), receives the
    authorization code on http://localhost:8020, and saves the profile with
    `auth_type = databricks-cli`; the tokens go to ~/.databricks/token-cache.json.
    """
    profile = settings(ctx).profile
    refuse_positional_with_flags(profile_arg, host, profile)
    if profile_arg:
        if "://" in profile_arg or "." in profile_arg:
            host = profile_arg
        else:
            profile = profile_arg
    path = Path(config_file_path(os.environ))
    profile = profile or "DEFAULT"
    host = host or _profile_host(path, profile)
    if not host:
        raise click.ClickException("please either provide a host with --host or a profile that has one")
    host = normalize_host(host)

    port = redirect_port()
    try:
        server = HTTPServer(("127.0.0.1", port), BaseHTTPRequestHandler)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on localhost:{port} for the browser's redirect ({exc.strerror or exc}); "
            f"free the port or set {PORT_ENV}") from exc
    try:
        flow = AuthorizationCodeFlow(host, f"http://localhost:{server.server_address[1]}")
        callback = _Callback(flow.state)
        server.RequestHandlerClass = callback.handler()
        thread = threading.Thread(target=_serve, args=(server, callback), daemon=True)
        thread.start()
        click.echo(f"Please complete authentication by opening this link in your browser:\n{flow.url}", err=True)
        webbrowser.open(flow.url)
        if not callback.done.wait(timeout):
            raise click.ClickException(f"timed out after {timeout:g}s waiting for the browser to sign in")
        if callback.error or not callback.code:
            raise click.ClickException(f"authorize: {callback.error or 'no code'}")
        token = flow.exchange(callback.code)
    except OAuthFailure as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        server.server_close()
    try:
        TokenCache().put(token, profile, host)
        values = {"host": host, "auth_type": "databricks-cli"}
        executable = cli_executable()
        if executable:
            values["databricks_cli_path"] = executable
        save_profile(path, profile, values, clear=AUTH_KEYS)
    except (ConfigFileError, OSError) as exc:
        raise click.ClickException(f"saving profile {profile!r}: {exc}") from exc
    click.echo(f"Profile {profile} was successfully saved", err=True)


def _serve(server: HTTPServer, callback: _Callback) -> None:
    """Answer requests until the callback has come (stray requests such as a favicon are 404s)."""
    while not callback.done.is_set():
        server.handle_request()
