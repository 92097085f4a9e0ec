"""Where the server's Unix sockets live: a short private directory outside LADLE_HOME.

A Unix socket's path is limited to 107 bytes (sun_path), so sockets under a long LADLE_HOME
(a test's temporary directory, a deep home) could not be bound. The server's sockets (each
local replica's, the gateway workers' relay to the server) go instead into a directory made
with mkdtemp (mode 0700) under $XDG_RUNTIME_DIR or the temporary directory, and
`LADLE_HOME/run/sockets` is a symbolic link to it: the link is how the server finds it again
(a server killed without its shutdown reuses it) and how a person finds the sockets. Workers
never see it: it is covered in their mount namespace as LADLE_HOME is (the server passes it
to the sandbox), and in mode "user" its 0700 already keeps the worker user out. The
shutdown removes it and the link.

A directory the link points to is reused only if it is a real directory of this uid, closed
to others (0700); otherwise (a reboot emptied /tmp, someone else made one of that name) a
new one is made and the link replaced.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

LINK = "sockets"
SUN_PATH_MAX = 107     # bytes of a socket's path (sun_path is 108 with its terminating NUL)
_ROOM = 64             # what a socket's name needs below the directory (a replica's is <= 56)


def socket_dir(run_dir: Path) -> Path:
    """The server's socket directory (made, or reused when the link points at a valid one)."""
    link = run_dir / LINK
    current = _linked(link)
    if current is not None:
        return current
    run_dir.mkdir(parents=True, exist_ok=True)
    made = Path(tempfile.mkdtemp(prefix="ladle-", dir=_base()))
    tmp = run_dir / f".{LINK}.{made.name}"
    tmp.unlink(missing_ok=True)
    os.symlink(made, tmp)
    os.replace(tmp, link)      # atomic: the link names the old directory or the new one
    return made


def remove_socket_dir(run_dir: Path) -> None:
    """Remove the socket directory the link names (if valid) and the link."""
    link = run_dir / LINK
    current = _linked(link)
    if current is not None:
        shutil.rmtree(current, ignore_errors=True)
    try:
        if link.is_symlink():
            link.unlink()
    except OSError:
        pass


def _linked(link: Path) -> Path | None:
    try:
        target = Path(os.readlink(link))
        st = os.lstat(target)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        return None
    return target


def _base() -> str:
    """The first of $XDG_RUNTIME_DIR, the temporary directory and /tmp that is a writable
    directory with room for a socket's name below it."""
    for d in (os.environ.get("XDG_RUNTIME_DIR"), tempfile.gettempdir(), "/tmp"):
        if d and os.path.isabs(d) and os.path.isdir(d) and os.access(d, os.W_OK | os.X_OK) \
                and len(os.fsencode(d)) + 1 + len("ladle-xxxxxxxx") + 1 + _ROOM <= SUN_PATH_MAX:
            return d
    return "/tmp"
