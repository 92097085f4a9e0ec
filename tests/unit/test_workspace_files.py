"""Workspace paths: canonical forms, and every path confined to the caller's own folder."""

from __future__ import annotations

import pytest

from ladle.control.workspace_files import WorkspaceFiles, canonical
from ladle.schemas.errors import ApiError
from ladle.schemas.principal import Principal

ALICE = Principal(name="alice@example.com")
ADMIN = Principal(name="admin", is_admin=True)


@pytest.mark.parametrize("path,want", [
    ("/Workspace/Users/a/x", "/Users/a/x"), ("/Users/a/x", "/Users/a/x"), ("/Users/a/x/", "/Users/a/x"),
    ("/", "/"), ("/Workspace", "/"),
])
def test_canonical(path, want):
    assert canonical(path) == want


@pytest.mark.parametrize("path", ["Users/a", "/Users/a/../b", "/Users/a/./b", "/Users//a", "/Users/a\\b",
                                  "/Users/a\x00b", ""])
def test_paths_that_are_not_normalized_are_refused(path):
    with pytest.raises(ApiError) as e:
        canonical(path)
    assert e.value.status == 400 and e.value.message.startswith("path:")


@pytest.mark.parametrize("path", ["/Users/bob@example.com/x", "/Users/alice@example.com.evil/x", "/Shared/x",
                                  "/Users", "/", "/Workspace/Users/bob/app.py"])
def test_a_user_touches_nothing_outside_their_folder(tmp_path, path):
    files = WorkspaceFiles(tmp_path / "ws")
    with pytest.raises(ApiError) as e:
        files.write(ALICE, path, b"x", overwrite=True)
    assert e.value.status == 403
    with pytest.raises(ApiError):
        files.read(ALICE, path)
    assert not (tmp_path / "ws").exists() or not any(p.is_file() for p in (tmp_path / "ws").rglob("*"))


def test_a_symlink_out_of_the_folder_is_not_followed(tmp_path):
    files = WorkspaceFiles(tmp_path / "ws")
    (tmp_path / "secret").write_text("server file")
    home = tmp_path / "ws" / "Users" / ALICE.name
    home.mkdir(parents=True)
    (home / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(ApiError) as e:
        files.read(ALICE, f"/Users/{ALICE.name}/link")
    assert e.value.status == 403


def test_write_list_read_delete_in_ones_own_folder(tmp_path):
    files = WorkspaceFiles(tmp_path / "ws")
    me = f"/Workspace/Users/{ALICE.name}"
    files.write(ALICE, f"{me}/app/app.py", b"print(1)", overwrite=False)
    with pytest.raises(ApiError) as e:
        files.write(ALICE, f"{me}/app/app.py", b"print(2)", overwrite=False)
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"
    assert files.read(ALICE, f"{me}/app/app.py") == b"print(1)"
    [obj] = files.list(ALICE, f"{me}/app")
    assert obj["path"] == f"/Users/{ALICE.name}/app/app.py" and obj["object_type"] == "FILE" and obj["size"] == 8
    with pytest.raises(ApiError) as e:
        files.delete(ALICE, f"{me}/app", recursive=False)
    assert e.value.error_code == "DIRECTORY_NOT_EMPTY"
    files.delete(ALICE, f"{me}/app", recursive=True)
    with pytest.raises(ApiError) as e:
        files.status(ALICE, f"{me}/app")
    assert e.value.status == 404
    assert files.status(ALICE, me)["object_type"] == "DIRECTORY"     # one's own folder always exists
    files.write(ADMIN, "/Shared/x.txt", b"admins write anywhere", overwrite=False)
    assert files.read(ADMIN, "/Shared/x.txt") == b"admins write anywhere"


@pytest.mark.parametrize("path", ["/Users/a/" + "x" * 256, "/Users/a/" + "/".join(["y" * 200] * 12),
                                  "/Users/a/\ud800"])
def test_names_the_disk_cannot_hold_are_400s(path):
    with pytest.raises(ApiError) as e:
        canonical(path)
    assert e.value.status == 400 and e.value.message.startswith("path:")
