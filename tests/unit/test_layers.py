"""The layering in .importlinter holds (import-linter, the same check `lint-imports` runs),
and every package of ladle is named in the layers contract, so a new one cannot slip past."""

from __future__ import annotations

import configparser
import pkgutil
import subprocess
import sys
from pathlib import Path

import ladle

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".importlinter"


def test_import_contracts_are_kept():
    # In its own process: lint-imports configures logging with dictConfig, which disables every
    # logger already made in this one (the CLI's --debug output of later tests went silent).
    run = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), str(CONFIG),
                          "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


def test_every_package_has_a_layer():
    cfg = configparser.ConfigParser()
    cfg.read(CONFIG)
    named = {m.strip() for line in cfg["importlinter:contract:layers"]["layers"].splitlines()
             for m in line.split("|") if m.strip()}
    top = {f"ladle.{m.name}" for m in pkgutil.iter_modules(ladle.__path__)}
    assert top - named == set(), "name these in .importlinter's layers contract"
