"""Apps: the wire shapes of /api/2.0/apps and the launch handed to the app runner."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class AppLaunch:
    """One deployment, ready to run: the runner builds the env and starts `command` in `source_dir`.

    `env` already holds DATABRICKS_HOST, DATABRICKS_CLIENT_ID/SECRET, DATABRICKS_APP_NAME,
    DATABRICKS_APP_URL, DATABRICKS_WORKSPACE_ID and app.yaml's env; the runner adds the port vars.
    """
    app_name: str
    deployment_id: str
    source_dir: Path
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
