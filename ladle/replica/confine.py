"""Confinement of a replica worker, done by the worker itself first thing after it starts
(single-threaded, before any model code or heavy import): a private mount namespace in which
ladle's state is hidden, then ladle's unprivileged worker user, then non-dumpable.

Standard library only (ctypes for unshare/mount/open_tree/move_mount/prctl): the worker
must start in a model's own environment too. Nothing here runs at import time.

The plan (which directories are hidden, which are shown again) is a pure function,
`mount_plan`, unit-tested on its own. The mechanics:

- `mode "user"` (the server runs as root): unshare(CLONE_NEWNS); every directory the
  worker user cannot traverse on the way to something it needs (the interpreter under
  /root, a test's 0700 tmp dir) and LADLE_HOME are covered by an empty tmpfs; only the
  directories the worker needs (its interpreter and libraries, read-only; its model,
  read-only; its own scratch directory, read-write) are put back at their usual paths as
  bind mounts taken (open_tree) before the cover. Then setgroups/setresgid/setresuid to the
  worker user, no_new_privs, non-dumpable (so the worker's /proc/<pid>/environ, mem, fd, cwd
  are closed to the other replicas, which share the worker uid).
- `mode "userns"` (not root, user namespaces allowed): the same in a user namespace that
  maps only the server's own uid; nothing is hidden by permissions (same uid) but
  LADLE_HOME is covered all the same.
- `mode "none"`: only non-dumpable (the scrubbed environment is the server's part).
"""

from __future__ import annotations

import ctypes
import os
import stat
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
OPEN_TREE_CLONE = 1
AT_RECURSIVE = 0x8000
AT_FDCWD = -100
MOVE_MOUNT_F_EMPTY_PATH = 0x4
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
# x86_64 and aarch64 share these (the new mount API has one number on every architecture)
SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429


class ConfineError(RuntimeError):
    pass


def _can_search(st: os.stat_result, uid: int, gids: set[int]) -> bool:
    if uid == 0:
        return True
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid in gids:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def blocked_ancestor(path: str, uid: int, gids: set[int], stat_fn=os.stat) -> str | None:
    """The outermost directory on the way to `path` (excluded) that `uid` cannot search."""
    parts = [p for p in path.split("/") if p]
    cur = ""
    for part in parts[:-1]:
        cur = f"{cur}/{part}"
        try:
            if not _can_search(stat_fn(cur), uid, gids):
                return cur
        except OSError:
            return None
    return None


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _outermost(paths: list[str]) -> list[str]:
    out: list[str] = []
    for p in sorted(set(paths), key=len):
        if not any(_under(p, o) for o in out):
            out.append(p)
    return out


def mount_plan(needed: dict[str, bool], hide: list[str], uid: int, gids: set[int],
               stat_fn=os.stat) -> list[tuple[str, list[tuple[str, bool]]]]:
    """What to cover and what to show again: [(cover, [(path, read_only), ...]), ...].

    `needed` maps each directory the worker must see (real paths) to read-only or not;
    `hide` lists directories covered whatever their permissions (LADLE_HOME). A cover is
    every directory in `hide` plus the first directory the worker's uid cannot search on the
    way to a needed one; covers inside another cover are dropped, and so are needed paths
    inside another needed path (shown with it)."""
    covers = [h for h in hide if h and h != "/"]
    for p in needed:
        b = blocked_ancestor(p, uid, gids, stat_fn)
        if b:
            covers.append(b)
    covers = _outermost(covers)
    keep = _outermost(list(needed))
    plan = []
    for c in covers:
        inside = [(p, needed[p]) for p in keep if _under(p, c)]
        plan.append((c, inside))
    return plan


def needed_paths(rw: list[str], ro: list[str]) -> dict[str, bool]:
    """The directories this interpreter needs (read-only) plus the given ones."""
    here = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))  # the ladle package's parent
    ro_all = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
              os.path.dirname(os.path.realpath(sys.executable)), here, *ro]
    ro_all += [p for p in sys.path if p and os.path.isdir(p)]
    out: dict[str, bool] = {}
    for p in ro_all:
        rp = os.path.realpath(p)
        if rp != "/" and os.path.isdir(rp):
            out[rp] = True
    for p in rw:
        out[os.path.realpath(p)] = False
    return out


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> int:
    if rc < 0:
        e = ctypes.get_errno()
        raise ConfineError(f"{what}: {os.strerror(e)} (errno {e})")
    return rc


def _apply(plan, libc) -> None:
    libc.syscall.restype = ctypes.c_long
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "making / private")
    for cover, inside in plan:
        if not os.path.isdir(cover):
            continue
        clones = []
        for path, ro in inside:
            fd = _check(libc.syscall(SYS_OPEN_TREE, AT_FDCWD, path.encode(),
                                     OPEN_TREE_CLONE | AT_RECURSIVE), f"open_tree {path}")
            clones.append((fd, path, ro))
        _check(libc.mount(b"tmpfs", cover.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755"),
               f"covering {cover}")
        for fd, path, ro in clones:
            os.makedirs(path, exist_ok=True)
            _check(libc.syscall(SYS_MOVE_MOUNT, fd, b"", AT_FDCWD, path.encode(), MOVE_MOUNT_F_EMPTY_PATH),
                   f"move_mount {path}")
            os.close(fd)
            if ro:
                _check(libc.mount(None, path.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY, None),
                       f"read-only {path}")


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def confine(spec: dict) -> None:
    """Apply `spec` ({"mode", "uid", "gid", "hide", "ro", "rw"}) to this process."""
    mode = spec.get("mode", "none")
    libc = _libc()
    if mode in ("user", "userns"):
        needed = needed_paths(list(spec.get("rw") or []), list(spec.get("ro") or []))
        hide = [os.path.realpath(h) for h in spec.get("hide") or []]
        if mode == "user":
            uid, gid = int(spec["uid"]), int(spec["gid"])
            plan = mount_plan(needed, hide, uid, {gid})
            _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
            _apply(plan, libc)
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
        else:
            uid, gid = os.getuid(), os.getgid()
            plan = mount_plan(needed, hide, uid, set(os.getgroups()) | {gid})
            _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare(CLONE_NEWUSER|CLONE_NEWNS)")
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"{uid} {uid} 1")
            _write("/proc/self/gid_map", f"{gid} {gid} 1")
            _apply(plan, libc)
        _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    _check(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "non-dumpable")
