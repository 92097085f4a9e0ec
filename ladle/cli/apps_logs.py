"""`ladle apps logs NAME`: the app's output, from ladle's `GET /api/2.0/apps/{name}/logs?tail_lines=N`
(`{"logs": "<text>"}`), where the Databricks CLI reads a websocket of the app's log service.

`--follow` polls once a second and prints the lines that came after the ones already shown
(the last lines printed are found again at the start of the new tail); `--search` keeps the
lines holding the term. `--source` is accepted for the Databricks CLI's scripts: ladle keeps
one log (the app's own output and the runner's lines), so both sources read it.
"""

from __future__ import annotations

import time
from typing import IO

import click

from ladle.cli.apps_project import has_project, project_app
from ladle.cli.apps_wait import BASE
from ladle.cli.client import ApiClient, from_context, seg
from ladle.cli.options import Duration, LadleCommand, settings

DEFAULT_TAIL_LINES = 200
FOLLOW_INTERVAL_S = 1.0
SOURCES = ("APP", "SYSTEM")


def fetch(client: ApiClient, name: str, tail_lines: int) -> list[str]:
    query = f"?tail_lines={tail_lines}" if tail_lines else ""
    answer = client.call("GET", f"{BASE}/{seg(name)}/logs{query}") or {}
    text = answer.get("logs") or ""
    return str(text).splitlines()


def new_lines(shown: list[str], tail: list[str]) -> list[str]:
    """The lines of `tail` that come after what `shown` ends with (longest overlap wins).
    Hand-written: the logs route answers a tail, not an offset, so new lines are found by overlap."""
    for k in range(min(len(shown), len(tail)), 0, -1):
        if shown[-k:] == tail[:k]:
            return tail[k:]
    return tail


def _emit(lines: list[str], search: str | None, out: IO[str] | None) -> None:
    for line in lines:
        if search and search not in line:
            continue
        click.echo(line)
        if out is not None:
            out.write(line + "\n")
            out.flush()


@click.command("logs", cls=LadleCommand)
@click.argument("name", required=False)
@click.option("--tail-lines", type=int, default=DEFAULT_TAIL_LINES, show_default=True,
              help="Number of recent log lines to show before streaming. Set to 0 to show everything.")
@click.option("-f", "--follow", is_flag=True, default=False, help="Continue streaming logs until interrupted.")
@click.option("--timeout", type=Duration(), default="0",
              help="Maximum time to stream when --follow is set. 0 disables the timeout.")
@click.option("--search", help="Only show lines holding this term.")
@click.option("--source", "sources", multiple=True, help="Restrict logs to APP and/or SYSTEM sources.")
@click.option("--output-file", type=click.Path(dir_okay=False, writable=True),
              help="Optional file path to write logs in addition to stdout.")
@click.pass_context
def logs(ctx: click.Context, name: str | None, tail_lines: int, follow: bool, timeout: float, search: str | None,
         sources: tuple[str, ...], output_file: str | None) -> None:
    """Show an app's logs.

    NAME is the name of the app; in a project folder (databricks.yml) it may be left out.
    """
    if not name:
        if not has_project():
            raise click.UsageError("Missing argument 'NAME' (required outside a project folder).")
        name = project_app()[1]
        if settings(ctx).output != "json":
            click.echo(f"Streaming logs for app '{name}' from project configuration", err=True)
    if tail_lines < 0:
        raise click.ClickException("--tail-lines cannot be negative")
    for value in (v.strip().upper() for s in sources for v in s.split(",")):
        if value not in SOURCES:
            raise click.ClickException(f"invalid --source value {value!r} (valid: {', '.join(SOURCES)})")
    client = from_context(ctx)
    out = open(output_file, "w", encoding="utf-8") if output_file else None  # noqa: SIM115 - closed below
    try:
        shown = fetch(client, name, tail_lines)
        _emit(shown, search, out)
        deadline = time.monotonic() + timeout if timeout else None
        while follow and (deadline is None or time.monotonic() < deadline):
            time.sleep(FOLLOW_INTERVAL_S)
            tail = fetch(client, name, max(tail_lines, DEFAULT_TAIL_LINES))
            fresh = new_lines(shown, tail)
            _emit(fresh, search, out)
            shown = (shown + fresh)[-max(tail_lines, DEFAULT_TAIL_LINES):]
    except KeyboardInterrupt:
        pass
    finally:
        if out is not None:
            out.close()
