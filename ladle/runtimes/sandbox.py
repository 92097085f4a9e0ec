"""What a replica worker is given, and nothing more (the server's side of containment).

A worker starts with a minimal environment (`exec_env`: PATH, locale, proxies and CA
settings, what its interpreter needs) and gets the rest in its job once it has confined
itself (`job_env`: its per-replica HOME and temp dir, its served entity's environment_vars
with secret references resolved). The server's own environment (LADLE_ADMIN_TOKEN,
LADLE_SECRET_KEY, database URLs, ...) never reaches it.

`Sandbox` says how the worker confines itself (ladle/replica/confine.py does it):
- the server runs as root: mode "user" - a dedicated unprivileged user (LADLE_WORKER_USER,
  created with `useradd --system` when missing) in a private mount namespace where
  LADLE_HOME (0700) and the server's socket directory (runtimes/socket_dir.py) are covered,
  with only the worker's interpreter, its model (a hard-linked copy in its own scratch
  directory) and that scratch directory visible;
- not root, user namespaces allowed: mode "userns" - the same mount namespace, same uid;
- otherwise mode "none": scrubbed environment and non-dumpable only.
"""

from __future__ import annotations

import logging
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from ladle.support.child_env import server_child_env, set_non_dumpable  # noqa: F401 (re-exported)
from ladle.replica.confine import blocked_ancestor

log = logging.getLogger("ladle.sandbox")

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Settings of the machine a worker may need and that carry no secret of ladle's.
PASSTHROUGH = (
    "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "LC_TIME", "LC_COLLATE", "LC_MONETARY",
    "LC_MESSAGES", "TZ", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
    "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
    "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES", "LD_LIBRARY_PATH",
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
)
MODES = ("auto", "user", "userns", "none")


def exec_env(python: str, prepared_env: Mapping[str, str], server_env: Mapping[str, str] | None = None
             ) -> dict[str, str]:
    """The environment a worker process is started with (before its job): nothing of the
    server's but the machine settings in PASSTHROUGH, and the PYTHONPATH its interpreter
    needs (a uv-built model environment imports ladle's worker from a private path)."""
    src = os.environ if server_env is None else server_env
    env = {k: src[k] for k in PASSTHROUGH if k in src}
    env.setdefault("LANG", "C.UTF-8")
    env["PATH"] = f"{os.path.dirname(python)}:{SYSTEM_PATH}"
    env["PYTHONUNBUFFERED"] = "1"
    env["HOME"] = "/nonexistent"  # the job sets the replica's own
    if prepared_env.get("PYTHONPATH"):
        env["PYTHONPATH"] = prepared_env["PYTHONPATH"]
    return env


def job_env(home: str, tmp: str, entity_env: Mapping[str, str], prepared_env: Mapping[str, str]
            ) -> dict[str, str]:
    """What the worker adds to its environment once confined: its HOME and temp dir, the
    served entity's environment_vars, the prepared env last (build settings and the
    environment_vars with secret references resolved)."""
    return {"HOME": home, "TMPDIR": tmp, "TMP": tmp, "TEMP": tmp, **entity_env, **prepared_env}


def worker_env(python: str, home: str, tmp: str, entity_env: Mapping[str, str],
               prepared_env: Mapping[str, str], server_env: Mapping[str, str] | None = None
               ) -> dict[str, str]:
    """Everything a worker's os.environ holds once it serves (exec_env, then job_env)."""
    return {**exec_env(python, prepared_env, server_env), **job_env(home, tmp, entity_env, prepared_env)}


@dataclass
class Sandbox:
    mode: str = "none"
    uid: int | None = None
    gid: int | None = None
    user: str | None = None
    hide: list[str] = field(default_factory=list)
    reason: str = ""

    def describe(self) -> str:
        if self.mode == "user":
            return f"workers run as user {self.user} (uid {self.uid}) in a private mount namespace"
        if self.mode == "userns":
            return "workers run in a user and mount namespace (same uid); environment scrubbed"
        return f"workers share the server's user; environment scrubbed, non-dumpable ({self.reason})"

    def spec(self, ro: list[str], rw: list[str]) -> dict:
        """The confinement a worker applies to itself (ladle.replica.confine.confine)."""
        return {"mode": self.mode, "uid": self.uid, "gid": self.gid, "hide": self.hide, "ro": ro, "rw": rw}

    def visible(self, path: str) -> bool:
        """Whether a worker sees `path` as it is (not under LADLE_HOME, and on a way its uid
        may pass): e.g. a foundation model shipped in a package is used in place."""
        if any(path == h or path.startswith(h.rstrip("/") + "/") for h in self.hide):
            return False
        if self.mode != "user":
            return True
        return blocked_ancestor(path + "/x", self.uid, {self.gid}) is None

    def make_scratch(self, run_dir: Path) -> Path:
        """A new per-replica directory (HOME, temp dir, model copy) owned by the worker user."""
        d = run_dir / f"w-{secrets.token_hex(8)}"
        d.mkdir(mode=0o700, parents=True)
        for sub in ("home", "tmp"):
            (d / sub).mkdir(mode=0o700)
        if self.mode == "user":
            for p in (d, d / "home", d / "tmp"):
                os.chown(p, self.uid, self.gid)
        return d

    def place_model(self, model_dir: str, scratch: Path) -> str:
        """The model directory as the worker sees it: a hard-linked (else copied) read-only
        copy in its scratch directory, so no other entity's files need be visible. Directories
        are the server's (0755), files readable by all (only this replica's namespace shows them)."""
        src = Path(model_dir)
        if self.mode == "none" or not src.is_dir() or self.visible(str(src.resolve())):
            return model_dir
        dest = scratch / "model"
        shutil.copytree(src, dest, copy_function=_link_or_copy, symlinks=True)
        for root, dirs, files in os.walk(dest):
            os.chmod(root, 0o755)
            for f in files:
                p = os.path.join(root, f)
                if not os.path.islink(p):
                    os.chmod(p, os.stat(p).st_mode | 0o444)
        return str(dest)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def ensure_user(name: str, attempts: int = 20) -> pwd.struct_passwd:
    """The worker user, created as a system user without a home or a login shell when missing
    (two servers starting at once may race: useradd's lock is retried)."""
    for _ in range(attempts):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        r = subprocess.run([useradd, "--system", "--user-group", "--no-create-home", "--home-dir",
                            "/nonexistent", "--shell", "/usr/sbin/nologin", name],
                           capture_output=True, text=True)
        if r.returncode == 0:
            continue
        if r.returncode not in (1, 9, 10):  # 1: cannot update passwd (lock), 9: exists, 10: group file
            raise RuntimeError(f"could not create the worker user {name!r}: {r.stderr.strip()}")
        time.sleep(0.1)
    return pwd.getpwnam(name)


def _mount_ns_works() -> bool:
    """Whether this process may make mount namespaces (a container may forbid it)."""
    r = subprocess.run([sys.executable, "-c", "import ctypes,sys; sys.exit(ctypes.CDLL(None).unshare(0x20000) != 0)"],
                       capture_output=True)
    return r.returncode == 0


def _userns_works() -> bool:
    r = subprocess.run([sys.executable, "-c",
                        "import ctypes,sys; sys.exit(ctypes.CDLL(None).unshare(0x10020000) != 0)"],
                       capture_output=True)
    return r.returncode == 0


def make_sandbox(mode: str, user: str, home: Path, also_hide: Iterable[Path] = ()) -> Sandbox:
    """Decide, once at start, how workers are confined (see the module doc). `also_hide`:
    directories covered as LADLE_HOME is (the server's socket directory)."""
    if mode not in MODES:
        raise ValueError(f"LADLE_WORKER_ISOLATION must be one of {', '.join(MODES)}, not {mode!r}")
    hide = [str(Path(p).resolve()) for p in (home, *also_hide)]
    root = os.geteuid() == 0
    if mode == "user" or (mode == "auto" and root):
        if not root:
            raise ValueError("LADLE_WORKER_ISOLATION=user needs the server to run as root")
        why = "this machine forbids mount namespaces"
        if _mount_ns_works():
            try:
                pw = ensure_user(user)
                os.chmod(home, 0o700)
                return Sandbox("user", pw.pw_uid, pw.pw_gid, user, hide)
            except (OSError, RuntimeError) as e:  # e.g. no useradd on this machine
                why = f"the worker user is missing and could not be created ({e})"
        if mode == "user":
            raise ValueError(f"LADLE_WORKER_ISOLATION=user: {why}")
        log.warning("replica workers run as the server's user: %s", why)
        return Sandbox("none", reason=why)
    if mode == "userns" or (mode == "auto" and not root):
        if _userns_works():
            os.chmod(home, 0o700)
            return Sandbox("userns", hide=hide)
        if mode == "userns":
            raise ValueError("LADLE_WORKER_ISOLATION=userns: user namespaces are not allowed here")
        return Sandbox("none", reason="user namespaces not allowed")
    return Sandbox("none", reason="LADLE_WORKER_ISOLATION=none")
