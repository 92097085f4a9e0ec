"""The app of the project in the current folder, for the `ladle apps` commands that may leave
out APP_NAME there (like the Databricks CLI's): `deploy` deploys the project's bundle and runs
its app, `logs` reads the app named in its databricks.yml.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import yaml

BUNDLE_FILE = "databricks.yml"


def has_project(folder: Path | None = None) -> bool:
    return ((folder or Path.cwd()) / BUNDLE_FILE).is_file()


def project_app(folder: Path | None = None) -> tuple[str, str]:
    """(key, name) of the one app under resources.apps of ./databricks.yml."""
    path = (folder or Path.cwd()) / BUNDLE_FILE
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise click.ClickException(f"{BUNDLE_FILE}: cannot read it: {exc}") from exc
    apps = ((doc.get("resources") or {}).get("apps") or {}) if isinstance(doc, dict) else {}
    if len(apps) != 1:
        raise click.ClickException(f"{BUNDLE_FILE} defines {len(apps)} apps; give the app's name as an argument")
    key, spec = next(iter(apps.items()))
    name = str((spec or {}).get("name") or "")
    if not name or "${" in name:
        raise click.ClickException(f"{BUNDLE_FILE}: the name of app {key} is not a plain name ({name or 'none'}); "
                                   f"give the app's name as an argument")
    return str(key), name


def deploy_project(profile: str | None) -> None:
    """`ladle bundle deploy` then `ladle bundle run <app key>` here."""
    key, _ = project_app()
    ladle = [sys.executable, "-c", "from ladle.cli.main import main; main()"]
    flags = ["--profile", profile] if profile else []
    for step in (["bundle", "deploy"], ["bundle", "run", key]):
        rc = subprocess.run([*ladle, *step, *flags], check=False).returncode
        if rc != 0:
            raise click.ClickException(f"ladle {' '.join(step)} failed (exit code {rc})")
