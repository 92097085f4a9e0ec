"""Uploading a local app folder to the workspace, as `ladle apps deploy --source-code-path DIR`
does before it deploys (the Databricks CLI syncs the folder the same way).

The remote folder is replaced as a whole (deleted, then every file imported with
`POST /api/2.0/workspace/import`), so files removed locally are gone remotely too. What git
would ignore is not uploaded: the folder's `.gitignore` (read with pathspec, git's own
wildmatch rules) plus `.git/`, `.databricks/`, `.venv/`, `__pycache__/` and `.env`, which hold
local state or secrets and never belong to a deployment.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path, PurePosixPath

import click
import pathspec

from ladle.cli.client import ApiClient, ApiError, current_user

ALWAYS_IGNORED = [".git/", ".databricks/", ".venv/", "__pycache__/", "node_modules/", ".env", "*.pyc"]


def default_app_folder(client: ApiClient, app_name: str) -> str:
    return f"/Workspace/Users/{current_user(client)}/apps/{app_name}"


def local_files(folder: Path) -> list[Path]:
    """The files to upload, relative to `folder`, sorted."""
    patterns = list(ALWAYS_IGNORED)
    ignore_file = folder / ".gitignore"
    if ignore_file.is_file():
        patterns += ignore_file.read_text(encoding="utf-8", errors="replace").splitlines()
    spec = pathspec.GitIgnoreSpec.from_lines(patterns)
    out: list[Path] = []
    for root, dirs, files in os.walk(folder):
        rel_root = Path(root).relative_to(folder)
        dirs[:] = sorted(d for d in dirs if not spec.match_file(f"{(rel_root / d).as_posix()}/"))
        for name in sorted(files):
            rel = rel_root / name
            if not spec.match_file(rel.as_posix()) and not (Path(root) / name).is_symlink():
                out.append(rel)
    return out


def upload_folder(client: ApiClient, folder: Path, remote: str) -> int:
    """Replace the workspace folder `remote` with the files of `folder`; return how many."""
    files = local_files(folder)
    if not files:
        raise click.ClickException(f"{folder}: nothing to upload (the folder is empty or all ignored)")
    try:
        client.call("POST", "/api/2.0/workspace/delete", {"path": remote, "recursive": True})
    except ApiError as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST" and exc.status != 404:
            raise
    client.call("POST", "/api/2.0/workspace/mkdirs", {"path": remote})
    for rel in files:
        content = (folder / rel).read_bytes()
        target = str(PurePosixPath(remote) / rel.as_posix())
        client.call("POST", "/api/2.0/workspace/import", {
            "path": target, "content": base64.b64encode(content).decode(), "format": "AUTO", "overwrite": True})
    return len(files)


def resolve_source(client: ApiClient, app_name: str, source_code_path: str | None) -> str | None:
    """The workspace path to deploy: a local folder is uploaded first; a workspace path
    (`/Workspace/...`, or any absolute path that is not a local folder) is used as it is."""
    if source_code_path is None:
        return None
    if source_code_path.startswith("/Workspace/"):
        return source_code_path
    local = Path(source_code_path).expanduser()
    if local.is_dir():
        remote = default_app_folder(client, app_name)
        count = upload_folder(client, local, remote)
        click.echo(f"Uploaded {count} file(s) from {local} to {remote}", err=True)
        return remote
    if source_code_path.startswith("/"):
        return source_code_path
    raise click.ClickException(f"--source-code-path: {source_code_path} is neither a local folder nor a "
                               f"workspace path (/Workspace/...)")
