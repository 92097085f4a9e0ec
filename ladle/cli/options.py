"""Shared click pieces for the HTTP-talking command groups.

Global flags (`-o/--output`, `-p/--profile`, `--debug`) are accepted both on a group and on
each of its subcommands, like the Databricks CLI's persistent flags; the value given last on
the command line wins. `--json` takes inline JSON or `@path/to/file.json`; `--timeout` takes
a Go duration (`20m`, `45s`, `1h30m`).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any, Callable

import click

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}
OUTPUT_ENV = "DATABRICKS_OUTPUT_FORMAT"
_META_OUTPUT = "ladle.cli.output"
_META_PROFILE = "ladle.cli.profile"
_META_DEBUG = "ladle.cli.debug"


@dataclass(frozen=True)
class Settings:
    output: str
    profile: str | None
    debug: bool


def settings(ctx: click.Context) -> Settings:
    """The effective global flags: flag > env (output only) > default."""
    output = ctx.meta.get(_META_OUTPUT) or os.environ.get(OUTPUT_ENV) or "text"
    output = output.lower()
    if output not in ("text", "json"):
        raise click.ClickException(f"unknown output format {output!r}: use text or json")
    return Settings(
        output=output,
        profile=ctx.meta.get(_META_PROFILE),
        debug=bool(ctx.meta.get(_META_DEBUG)),
    )


def _remember(key: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None and value is not False:
            ctx.meta[key] = value
        return value

    return callback


def global_params() -> list[click.Option]:
    """Fresh `-o/--output`, `-p/--profile` and `--debug` options (not passed to the callback)."""
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
            help="Enable debug output (HTTP requests, tracebacks).",
        ),
    ]


class LadleCommand(click.Command):
    """A command that never shows a traceback unless --debug was given."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", CONTEXT_SETTINGS)
        super().__init__(*args, **kwargs)
        self.params.extend(global_params())

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (KeyboardInterrupt, BrokenPipeError):
            raise
        except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
            if settings(ctx).debug:
                raise
            raise click.ClickException(str(exc) or type(exc).__name__) from exc


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
