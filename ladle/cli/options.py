"""Shared click pieces for the HTTP-talking command groups.

Global flags (`-o/--output`, `-p/--profile`, `--debug` and the hidden `--log-level`,
`--log-file`, `--log-format`) are accepted on the root command, on every group and on each
subcommand, like the Databricks CLI's persistent flags (`ladle -p dev serving-endpoints list`
and `ladle serving-endpoints list -p dev` are the same); the value given last on the command
line wins. `--json` takes inline JSON or `@path/to/file.json`; `--timeout` takes a Go duration
(`20m`, `45s`, `1h30m`).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any, Callable

import click

from ladle.cli import cli_logging

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}
OUTPUT_ENV = "DATABRICKS_OUTPUT_FORMAT"
_META_OUTPUT = "ladle.cli.output"
_META_PROFILE = "ladle.cli.profile"
_META_DEBUG = "ladle.cli.debug"
_META_LOG_LEVEL = "ladle.cli.log_level"
_META_LOG_FILE = "ladle.cli.log_file"
_META_LOG_FORMAT = "ladle.cli.log_format"
_META_LOG_SESSION = "ladle.cli.log_session"


@dataclass(frozen=True)
class Settings:
    output: str
    profile: str | None
    debug: bool
    log_level: str = "disabled"
    log_file: str = "stderr"
    log_format: str = "text"


def settings(ctx: click.Context) -> Settings:
    """The effective global flags: flag > env > default."""
    output = ctx.meta.get(_META_OUTPUT) or os.environ.get(OUTPUT_ENV) or "text"
    output = output.lower()
    if output not in ("text", "json"):
        raise click.ClickException(f"unknown output format {output!r}: use text or json")
    debug = bool(ctx.meta.get(_META_DEBUG))
    level, file, fmt = cli_logging.effective(
        ctx.meta.get(_META_LOG_LEVEL), ctx.meta.get(_META_LOG_FILE), ctx.meta.get(_META_LOG_FORMAT), debug
    )
    return Settings(
        output=output,
        profile=ctx.meta.get(_META_PROFILE),
        debug=debug,
        log_level=level,
        log_file=file,
        log_format=fmt,
    )


def log_session(ctx: click.Context) -> cli_logging.LogSession | None:
    """The running command's logging (None outside a LadleCommand)."""
    return ctx.meta.get(_META_LOG_SESSION)


def _remember(key: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None and value is not False:
            ctx.meta[key] = value
        return value

    return callback


def global_params() -> list[click.Option]:
    """Fresh global options (not passed to the callback); the log flags are hidden from --help
    like the Databricks CLI's."""
    return [
        click.Option(
            ["-o", "--output"],
            type=click.Choice(["text", "json"], case_sensitive=False),
            default=None,
            expose_value=False,
            callback=_remember(_META_OUTPUT),
            help=f"Output type: text or json (env {OUTPUT_ENV}; default text).",
        ),
        click.Option(
            ["-p", "--profile"],
            metavar="NAME",
            default=None,
            expose_value=False,
            callback=_remember(_META_PROFILE),
            help="~/.databrickscfg profile.",
        ),
        click.Option(
            ["--debug"],
            is_flag=True,
            default=False,
            expose_value=False,
            callback=_remember(_META_DEBUG),
            help="Enable debug logging (to stderr) and tracebacks.",
        ),
        click.Option(
            ["--log-level"],
            type=click.Choice(list(cli_logging.LEVELS), case_sensitive=False),
            default=None,
            expose_value=False,
            hidden=True,
            callback=_remember(_META_LOG_LEVEL),
            help=f"Log level (env {cli_logging.LEVEL_ENV}; default disabled).",
        ),
        click.Option(
            ["--log-file"],
            metavar="FILE",
            default=None,
            expose_value=False,
            hidden=True,
            callback=_remember(_META_LOG_FILE),
            help=f"File to write logs to: stderr, stdout or a path (env {cli_logging.FILE_ENV}).",
        ),
        click.Option(
            ["--log-format"],
            type=click.Choice(list(cli_logging.FORMATS), case_sensitive=False),
            default=None,
            expose_value=False,
            hidden=True,
            callback=_remember(_META_LOG_FORMAT),
            help=f"Log output format: text or json (env {cli_logging.FORMAT_ENV}).",
        ),
    ]


class LadleCommand(click.Command):
    """A command that never shows a traceback unless --debug was given."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", CONTEXT_SETTINGS)
        super().__init__(*args, **kwargs)
        self.params.extend(global_params())

    def invoke(self, ctx: click.Context) -> Any:
        opts = settings(ctx)
        try:
            session = cli_logging.LogSession(opts.log_level, opts.log_file, opts.log_format)
        except OSError as exc:
            raise click.ClickException(f"cannot open log file {opts.log_file}: {exc.strerror or exc}") from exc
        ctx.meta[_META_LOG_SESSION] = session
        log = cli_logging.log
        log.info("start version=%s command=%r", cli_version(), ctx.command_path)
        try:
            result = self._invoke(ctx, opts)
        except click.exceptions.Exit as exc:
            log.info("completed execution exit_code=%s", exc.exit_code)
            raise
        except click.exceptions.ClickException as exc:
            log.info("failed execution exit_code=%s error=%r", exc.exit_code, exc.format_message())
            raise
        except BaseException as exc:
            log.info("failed execution exit_code=1 error=%r", type(exc).__name__)
            raise
        else:
            log.info("completed execution exit_code=0")
            return result
        finally:
            ctx.meta.pop(_META_LOG_SESSION, None)
            session.close()

    def _invoke(self, ctx: click.Context, opts: Settings) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (KeyboardInterrupt, BrokenPipeError):
            raise
        except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
            if opts.debug:
                raise
            raise click.ClickException(str(exc) or type(exc).__name__) from exc


def cli_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ladle")
    except PackageNotFoundError:
        return "0.0.0"


class LadleGroup(click.Group):
    """A group whose subcommands are LadleCommands and which accepts the global flags."""

    command_class = LadleCommand

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", CONTEXT_SETTINGS)
        super().__init__(*args, **kwargs)
        self.params.extend(global_params())


class JsonInput(click.ParamType):
    """Inline JSON or `@path/to/file.json`; must be a JSON object."""

    name = "JSON"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, dict):
            return value
        text = str(value)
        if text.startswith("@"):
            path = text[1:]
            try:
                with open(path, encoding="utf-8") as fh:
                    text = fh.read()
            except OSError as exc:
                self.fail(f"cannot read {path}: {exc.strerror or exc}", param, ctx)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            self.fail(f"invalid JSON: {exc}", param, ctx)
        if not isinstance(data, dict):
            self.fail("expected a JSON object", param, ctx)
        return data


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--json JSON`, passed to the callback as `json_body` (a dict or None)."""
    return click.option(
        "--json",
        "json_body",
        type=JsonInput(),
        default=None,
        help="Either inline JSON string or @path/to/file.json with request body.",
    )(f)


def require_json(json_body: dict[str, Any] | None) -> dict[str, Any]:
    if json_body is None:
        raise click.UsageError("please provide command input in JSON format by specifying the --json flag")
    return dict(json_body)


_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Parse a Go duration string (`20m`, `1h30m`, `1.5s`, `0`) into seconds."""
    s = text.strip()
    if s in ("0", "+0"):
        return 0.0
    if s.startswith("+"):
        s = s[1:]
    pos, total = 0, 0.0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None:
            raise ValueError(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if not s:
        raise ValueError(f'time: invalid duration "{text}"')
    return total


def format_duration(seconds: float) -> str:
    """Format seconds the way Go prints a time.Duration (`20m0s`, `2s`, `1h30m0s`)."""
    if seconds <= 0:
        return "0s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = ""
    if hours:
        out += f"{int(hours)}h"
    if hours or minutes:
        out += f"{int(minutes)}m"
    out += f"{secs:.9f}".rstrip("0").rstrip(".") + "s"
    return out


class Duration(click.ParamType):
    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def wait_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--no-wait` and `--timeout` for long-running commands."""
    f = click.option(
        "--timeout",
        type=Duration(),
        default="20m",
        show_default=True,
        help="Maximum amount of time to reach NOT_UPDATING state.",
    )(f)
    f = click.option(
        "--no-wait",
        is_flag=True,
        default=False,
        help="Do not wait to reach NOT_UPDATING state.",
    )(f)
    return f
