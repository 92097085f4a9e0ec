"""`ladle models`: ladle's foundation model catalog (a ladle extension over HTTP)."""

from __future__ import annotations

import os

import click

from ladle.cli.client import from_context
from ladle.cli.options import LadleGroup
from ladle.cli.output import emit_json, emit_list

BASE = "/api/2.0/ladle/foundation-models"
TASKS = ("llm/v1/chat", "llm/v1/completions", "llm/v1/embeddings")


@click.group("models", cls=LadleGroup)
def models() -> None:
    """Foundation models ladle runs itself (system.ai.*).

    Every model whose weights are on the server's machine has a pay-per-token endpoint
    named ladle-<name>; provisioned-throughput endpoints serve them too.
    """


@models.command("list")
@click.pass_context
def list_(ctx: click.Context) -> None:
    """List the catalog: each model's system.ai name, task, real model and weights."""
    emit_list((from_context(ctx).call("GET", BASE) or {}).get("models") or [])


@models.command("add-local")
@click.argument("path", type=click.Path(exists=False, file_okay=False))
@click.option("--name", required=True, help="Short name: the model becomes system.ai.<name>, its endpoint ladle-<name>.")
@click.option("--task", required=True, type=click.Choice(TASKS), help="What the model serves.")
@click.pass_context
def add_local(ctx: click.Context, path: str, name: str, task: str) -> None:
    """Add a local Hugging Face model directory to the catalog.

    PATH is the model directory (config.json, weights, tokenizer) on the server's machine;
    nothing is downloaded. Its pay-per-token endpoint is created at once.
    """
    body = {"path": os.path.abspath(os.path.expanduser(path)), "name": name, "task": task}
    emit_json(from_context(ctx).call("POST", BASE + "/add-local", body))
