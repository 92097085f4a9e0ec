"""Printing rules of the Databricks CLI's serving-endpoints commands.

Both `text` and `json` output print pretty JSON (2-space indent), because those commands have
no text templates. Empty fields are omitted like Go's `omitempty`: None, "", [] and {} are
dropped from objects (recursively); false and 0 are kept (ladle's choice: `traffic_percentage: 0`
or `ready: false` carry meaning). Raw bodies (metrics, OpenAPI) are copied in text mode only.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

import click

from ladle.cli.options import settings


def is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, dict)) and len(value) == 0)


def prune(value: Any) -> Any:
    """Drop None / "" / [] / {} members of objects, recursively; list items are kept."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            item = prune(item)
            if not is_empty(item):
                out[key] = item
        return out
    if isinstance(value, list):
        return [prune(item) for item in value]
    return value


def prune_top(value: Any) -> Any:
    """Drop only the top-level empty members (for payloads whose inner data is arbitrary)."""
    if not isinstance(value, dict):
        return value
    return {k: v for k, v in value.items() if not is_empty(v)}


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def emit_json(value: Any, *, deep: bool = True) -> None:
    """Print one object as pretty JSON (an empty/None answer prints `{}`)."""
    if value is None:
        value = {}
    click.echo(dumps(prune(value) if deep else prune_top(value)))


def emit_list(items: Iterable[Any], limit: int = 0) -> None:
    """Print items as one pretty JSON array; `limit` > 0 keeps the first `limit` items."""
    if limit < 0:
        raise click.ClickException("--limit must be a non-negative integer")
    items = list(items)
    if limit:
        items = items[:limit]
    click.echo(dumps([prune(item) for item in items]))


def require_text_output(ctx: click.Context) -> None:
    """Raw-stream commands have no JSON renderer (like the Databricks CLI)."""
    if settings(ctx).output == "json":
        raise click.ClickException("json output not supported")


def emit_raw(data: bytes) -> None:
    """Copy a raw body to stdout unchanged."""
    text_stream = sys.stdout
    text_stream.flush()
    binary = getattr(text_stream, "buffer", None)
    if binary is None:
        text_stream.write(data.decode("utf-8", errors="replace"))
        text_stream.flush()
        return
    binary.write(data)
    binary.flush()


def emit_text(text: str) -> None:
    """Write a piece of text with no newline and flush (stream chunks)."""
    click.echo(text, nl=False)
    click.get_text_stream("stdout").flush()
