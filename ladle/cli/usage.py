"""`ladle usage`: what the endpoints with usage tracking were asked, summarised by endpoint,
requester or day (from `GET /api/2.0/ladle/usage`)."""

from __future__ import annotations

from typing import Any

import click

from ladle.cli.client import from_context
from ladle.cli.options import LadleCommand, settings
from ladle.cli.output import dumps

COLUMNS = (("request_count", "REQUESTS"), ("error_count", "ERRORS"),
           ("input_token_count", "INPUT TOKENS"), ("output_token_count", "OUTPUT TOKENS"),
           ("request_size_bytes", "REQUEST BYTES"), ("response_size_bytes", "RESPONSE BYTES"))


@click.command("usage", cls=LadleCommand)
@click.option("--by", "group_by", type=click.Choice(["endpoint", "requester", "day"]), default="endpoint",
              show_default=True, help="What to summarise by.")
@click.option("--endpoint", metavar="NAME", help="Only this endpoint's requests.")
@click.pass_context
def usage(ctx: click.Context, group_by: str, endpoint: str | None) -> None:
    """Summarise the usage table (endpoints with `usage_tracking_config.enabled`).

    Prints requests, errors, tokens and bytes per endpoint, requester or UTC day; `-o json`
    prints the rows as JSON.
    """
    path = f"/api/2.0/ladle/usage?group_by={group_by}"
    if endpoint:
        from urllib.parse import quote

        path += f"&endpoint={quote(endpoint, safe='')}"
    rows = (from_context(ctx).call("GET", path) or {}).get("rows") or []
    if settings(ctx).output == "json":
        click.echo(dumps(rows))
        return
    click.echo(render_table(rows, group_by))


def render_table(rows: list[dict[str, Any]], group_by: str) -> str:
    head = [group_by.upper()] + [title for _, title in COLUMNS]
    body = [[str(r.get(group_by) or "")] + [str(r.get(k, 0)) for k, _ in COLUMNS] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
             for line in [head, *body]]
    return "\n".join(line.rstrip() for line in lines)
