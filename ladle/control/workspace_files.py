"""Workspace files: the folders apps and bundles upload their source to, kept under
LADLE_HOME/workspace. Paths are Databricks workspace paths (`/Users/<user>/...`, also written
`/Workspace/Users/<user>/...`). A user reads and writes only under their own folder
`/Users/<user name>/`; admins anywhere. Object ACLs beyond that are not modelled.

Every path is checked twice: its parts must be plain names (no `..`, `.`, empty parts, NUL or
backslash), and the resolved file must lie inside the caller's folder, so no request reaches
the server's disk outside the workspace root. Every method blocks (disk): run them off the
event loop."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path, PurePosixPath
from typing import Any

from ladle.schemas.errors import ApiError, denied, invalid
from ladle.schemas.principal import Principal

MAX_IMPORT_BYTES = 10 * 1024 * 1024      # Databricks' limit on one import
PREFIX = "/Workspace"
MAX_NAME_BYTES, MAX_PATH_BYTES = 255, 2048     # what every Linux file system takes


def canonical(path: str, field: str = "path") -> str:
    """`/Workspace/Users/a/x` and `/Users/a/x` are one object: its canonical form drops the prefix."""
    if not path.startswith("/"):
        raise invalid(f"{field}: a workspace path is absolute (starts with /), got '{path}'")
    if "\\" in path or "\x00" in path:
        raise invalid(f"{field}: '{path}' holds a character a workspace path cannot hold")
    try:
        size = len(path.encode("utf-8"))
    except UnicodeEncodeError:
        raise invalid(f"{field}: not valid Unicode") from None
    parts = path.split("/")[1:]
    if size > MAX_PATH_BYTES or any(len(p.encode()) > MAX_NAME_BYTES for p in parts):
        raise invalid(f"{field}: too long (at most {MAX_NAME_BYTES} bytes a name, {MAX_PATH_BYTES} in all)")
    if parts and parts[-1] == "":
        parts = parts[:-1]            # a trailing slash
    if any(p in ("", ".", "..") for p in parts):
        raise invalid(f"{field}: '{path}' is not a normalized workspace path (no '.', '..' or '//')")
    if parts and parts[0] == PREFIX[1:]:
        parts = parts[1:]
    return "/" + "/".join(parts)


def object_id(path: str) -> int:
    return int(hashlib.sha256(path.encode()).hexdigest()[:13], 16)


def home_folder(p: Principal) -> str:
    return f"/Users/{p.name}"


class WorkspaceFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    # -- where a path lives on disk, if the caller may touch it ----------------------------------
    def locate(self, p: Principal, path: str, field: str = "path") -> tuple[str, Path]:
        wpath = canonical(path, field)
        if not p.is_admin:
            mine = home_folder(p)
            if "/" in p.name or not (wpath == mine or wpath.startswith(mine + "/")):
                raise denied(f"{field}: '{path}' is outside your workspace folder {mine} "
                             f"(only admins write elsewhere)")
        disk = self.root / PurePosixPath(wpath).relative_to("/")
        root = self.root.resolve()
        resolved = disk.resolve()
        if resolved != root and not resolved.is_relative_to(root):
            raise denied(f"{field}: '{path}' leaves the workspace")
        if not p.is_admin:
            own = (self.root / PurePosixPath(home_folder(p)).relative_to("/")).resolve()
            if resolved != own and not resolved.is_relative_to(own):
                raise denied(f"{field}: '{path}' leaves your workspace folder")
        return wpath, disk

    @staticmethod
    def _missing(wpath: str) -> ApiError:
        return ApiError("RESOURCE_DOES_NOT_EXIST", f"Path ({wpath}) doesn't exist.")

    # -- the workspace API ---------------------------------------------------------------------
    def status(self, p: Principal, path: str) -> dict[str, Any]:
        wpath, disk = self.locate(p, path)
        if not disk.exists():
            if wpath == home_folder(p):       # a user's own folder always exists
                disk.mkdir(parents=True, exist_ok=True)
            else:
                raise self._missing(wpath)
        return _info(wpath, disk)

    def mkdirs(self, p: Principal, path: str) -> None:
        wpath, disk = self.locate(p, path)
        for parent in [disk, *disk.parents]:
            if parent == self.root:
                break
            if parent.exists() and not parent.is_dir():
                raise ApiError("RESOURCE_ALREADY_EXISTS",
                               f"Cannot create directory {wpath}: a file is in the way.")
        disk.mkdir(parents=True, exist_ok=True)

    def write(self, p: Principal, path: str, content: bytes, overwrite: bool) -> None:
        wpath, disk = self.locate(p, path)
        if len(content) > MAX_IMPORT_BYTES:
            raise invalid(f"content: {len(content)} bytes is over the import limit of {MAX_IMPORT_BYTES}")
        if wpath in ("/", "/Users", home_folder(p)) or disk.is_dir():
            raise ApiError("RESOURCE_ALREADY_EXISTS", f"Path ({wpath}) is a directory.")
        if disk.exists() and not overwrite:
            raise ApiError("RESOURCE_ALREADY_EXISTS", f"Path ({wpath}) already exists.")
        self.mkdirs(p, str(PurePosixPath(wpath).parent))
        tmp = disk.with_name(f".{disk.name}.{os.getpid()}.part")
        tmp.write_bytes(content)
        os.replace(tmp, disk)         # readers see the old file or the new one, never half of it

    def list(self, p: Principal, path: str) -> list[dict[str, Any]]:
        wpath, disk = self.locate(p, path)
        if not disk.exists():
            if wpath == home_folder(p):       # a user's own folder always exists
                return []
            raise self._missing(wpath)
        if not disk.is_dir():
            return [_info(wpath, disk)]
        base = "" if wpath == "/" else wpath
        return [_info(f"{base}/{c.name}", c) for c in sorted(disk.iterdir())
                if not (c.name.startswith(".") and c.name.endswith(".part"))]

    def delete(self, p: Principal, path: str, recursive: bool) -> None:
        wpath, disk = self.locate(p, path)
        if wpath in ("/", "/Users"):
            raise invalid(f"path: '{wpath}' cannot be deleted")
        if not disk.exists():
            raise self._missing(wpath)
        if disk.is_dir():
            if any(disk.iterdir()) and not recursive:
                raise ApiError("DIRECTORY_NOT_EMPTY", f"Folder ({wpath}) is not empty.", 400)
            shutil.rmtree(disk)
        else:
            disk.unlink()

    def read(self, p: Principal, path: str) -> bytes:
        wpath, disk = self.locate(p, path)
        if not disk.exists():
            raise self._missing(wpath)
        if disk.is_dir():
            raise invalid(f"path: '{wpath}' is a directory; export one file at a time")
        return disk.read_bytes()

    # -- for app deployments -------------------------------------------------------------------
    def folder(self, p: Principal, path: str, field: str) -> Path:
        """The folder at workspace `path`, which `p` may read; a 400/403/404 naming `field`."""
        wpath, disk = self.locate(p, path, field)
        if not disk.is_dir():
            if disk.exists():
                raise invalid(f"{field}: '{wpath}' is a file, not a folder")
            raise ApiError("RESOURCE_DOES_NOT_EXIST", f"{field}: path ({wpath}) doesn't exist.")
        return disk


def snapshot(src: Path, dest: Path) -> None:
    """Copy a workspace folder (regular files and folders only) into a deployment's own copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, dest, symlinks=True, ignore=shutil.ignore_patterns("*.part"))


def _info(wpath: str, disk: Path) -> dict[str, Any]:
    st = disk.stat()
    out: dict[str, Any] = {"path": wpath, "object_id": object_id(wpath),
                           "object_type": "DIRECTORY" if disk.is_dir() else "FILE",
                           "created_at": int(st.st_ctime * 1000), "modified_at": int(st.st_mtime * 1000)}
    if not disk.is_dir():
        out["size"] = st.st_size
        out["resource_id"] = str(out["object_id"])
    return out
