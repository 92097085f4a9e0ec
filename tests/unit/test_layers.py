"""The layering in .importlinter holds (import-linter, the same check `lint-imports` runs),
and every package of ladle is named in the layers contract, so a new one cannot slip past."""

from __future__ import annotations

import configparser
import pkgutil
from pathlib import Path

import ladle
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".importlinter"


def test_import_contracts_are_kept(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    rc = lint_imports(config_filename=str(CONFIG), no_cache=True, no_logo=True)
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "0 broken" in out


def test_every_package_has_a_layer():
    cfg = configparser.ConfigParser()
    cfg.read(CONFIG)
    named = {m.strip() for line in cfg["importlinter:contract:layers"]["layers"].splitlines()
             for m in line.split("|") if m.strip()}
    top = {f"ladle.{m.name}" for m in pkgutil.iter_modules(ladle.__path__)}
    assert top - named == set(), "name these in .importlinter's layers contract"
