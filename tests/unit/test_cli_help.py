"""Snapshot tests of `--help` for the serving-endpoints, tokens and apps groups and every subcommand.

Set LADLE_UPDATE_SNAPSHOTS=1 to (re)write the snapshots in tests/unit/snapshots/cli_help/.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

SNAPSHOTS = Path(__file__).parent / "snapshots" / "cli_help"


def _groups() -> list[click.Group]:
    from ladle.cli.apps import apps
    from ladle.cli.serving_endpoints import serving_endpoints
    from ladle.cli.tokens import tokens

    return [serving_endpoints, tokens, apps]


def _cases() -> list[tuple[str, str | None]]:
    return [(g.name or "", sub) for g in _groups() for sub in [None, *sorted(g.commands)]]


@pytest.mark.parametrize(("group_name", "sub"), _cases(), ids=lambda v: v or "-")
def test_help_snapshot(group_name: str, sub: str | None) -> None:
    group = next(g for g in _groups() if g.name == group_name)
    args = ([sub] if sub else []) + ["--help"]
    result = CliRunner().invoke(group, args, prog_name=f"ladle {group_name}", terminal_width=80)
    assert result.exit_code == 0, result.output
    short = CliRunner().invoke(group, ([sub] if sub else []) + ["-h"], prog_name=f"ladle {group_name}", terminal_width=80)
    assert short.stdout == result.stdout
    path = SNAPSHOTS / f"{group_name}{'_' + sub if sub else ''}.txt"
    if os.environ.get("LADLE_UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(result.stdout)
    assert path.exists(), f"missing snapshot {path.name}: run with LADLE_UPDATE_SNAPSHOTS=1"
    assert result.stdout == path.read_text()


def test_root_help_snapshot() -> None:
    """`ladle --help`: the commands and the global flags (the log flags are hidden, as in `databricks`)."""
    from ladle.cli.main import _register, cli

    _register()
    result = CliRunner().invoke(cli, ["--help"], prog_name="ladle", terminal_width=80)
    assert result.exit_code == 0, result.output
    path = SNAPSHOTS / "ladle.txt"
    if os.environ.get("LADLE_UPDATE_SNAPSHOTS") == "1":
        path.write_text(result.stdout)
    assert path.exists(), f"missing snapshot {path.name}: run with LADLE_UPDATE_SNAPSHOTS=1"
    assert result.stdout == path.read_text()
