"""Preparing a `ladle bundle` command: find the bundle, check each file against the schema,
resolve the target for the signed-in user, and check what the resources refer to."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from ladle.cli.bundles import checks
from ladle.cli.bundles.deploy import app_source
from ladle.cli.bundles.diagnostics import BundleError, Diagnostic
from ladle.cli.bundles.endpoints import exists as endpoint_exists
from ladle.cli.bundles.loader import find_root, load
from ladle.cli.bundles.resolve import Bundle, resolve
from ladle.cli.bundles.schema import check_document
from ladle.cli.client import ApiClient, current_user, from_context, normalize_host

ROOT_ENV = "DATABRICKS_BUNDLE_ROOT"
TARGET_ENV = "DATABRICKS_BUNDLE_TARGET"


def target_options(f: Any) -> Any:
    f = click.option("--var", "variables", multiple=True, metavar="NAME=VALUE",
                     help='Set a variable: --var="name=value" (repeatable).')(f)
    return click.option("-t", "--target", envvar=TARGET_ENV, default=None,
                        help=f"Bundle target to use (env {TARGET_ENV}; default: the default target).")(f)


def parse_vars(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE", param_hint="--var")
        out[name.strip()] = value
    return out


def bundle_root() -> Path:
    configured = os.environ.get(ROOT_ENV)
    return Path(configured).resolve() if configured else find_root(Path.cwd().resolve())


def prepare(ctx: click.Context, target: str | None, variables: tuple[str, ...],
            *, server_checks: bool = True) -> tuple[ApiClient, Bundle]:
    """The resolved bundle, or a BundleError naming every problem found (file:line: field: message)."""
    overrides = parse_vars(variables)
    loaded = load(bundle_root())
    problems: list[Diagnostic] = []
    for doc in loaded.documents:
        problems += check_document(doc.data, doc.locs)
    client = from_context(ctx)
    user = current_user(client)
    try:
        bundle = resolve(loaded, target, user, overrides, dict(os.environ))
    except BundleError as exc:
        raise BundleError(problems + exc.diagnostics) from None
    if bundle.host and normalize_host(bundle.host) != normalize_host(client.config.host):
        problems.append(bundle.locs.diag(("workspace", "host"), (
            f"the bundle's workspace.host {bundle.host} is not the server you are signed in to "
            f"({client.config.host}): set DATABRICKS_HOST or -p to that server, or change workspace.host")))
    if server_checks:
        problems += checks.check(bundle, lambda name: endpoint_exists(client, name),
                                 lambda key: app_source(bundle, key))
    if problems:
        raise BundleError(problems)
    return client, bundle
