"""The server's socket directory (runtimes/socket_dir.py): short whatever LADLE_HOME's depth,
private, found again through LADLE_HOME/run/sockets, replaced when what the link names is not
a private directory of this uid, removed with its link."""

from __future__ import annotations

import os
import socket
import stat
import tempfile

from ladle.runtimes import socket_dir as sd


def test_short_private_and_found_again_under_a_deep_run_dir(tmp_path):
    run = tmp_path / ("d" * 200) / "run"
    d = sd.socket_dir(run)
    assert stat.S_IMODE(os.lstat(d).st_mode) == 0o700 and not str(d).startswith(str(tmp_path))
    assert os.readlink(run / "sockets") == str(d)
    assert sd.socket_dir(run) == d                      # the link names it: the same one
    path = d / ("k" * 40 + "-12.sock")
    assert len(os.fsencode(str(path))) <= sd.SUN_PATH_MAX
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(str(path))                               # where run/ itself could not hold one
    finally:
        s.close()
    sd.remove_socket_dir(run)
    assert not d.exists() and not os.path.lexists(run / "sockets")
    sd.remove_socket_dir(run)                           # twice: nothing left to remove


def test_a_link_to_a_missing_or_open_directory_gets_a_new_one(tmp_path):
    run = tmp_path / "run"
    first = sd.socket_dir(run)
    first.rmdir()                                       # e.g. a reboot emptied /tmp
    second = sd.socket_dir(run)
    assert second != first and second.is_dir()
    second.chmod(0o755)                                 # not private (someone else's would fail too)
    third = sd.socket_dir(run)
    assert third != second and os.readlink(run / "sockets") == str(third)
    sd.remove_socket_dir(run)
    assert second.exists()                              # only what the link names is removed
    second.rmdir()


def test_xdg_runtime_dir_first_unless_too_deep(tmp_path, monkeypatch):
    xdg = tempfile.mkdtemp(prefix="xdg-")          # short, as /run/user/<uid> is
    try:
        monkeypatch.setenv("XDG_RUNTIME_DIR", xdg)
        assert sd._base() == xdg
    finally:
        os.rmdir(xdg)
    deep = tmp_path / ("x" * 90)
    deep.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(deep))
    assert sd._base() != str(deep)
