"""What a replica worker is given (ladle/runtimes/sandbox.py), how it confines itself
(ladle/replica/confine.py) and the embedded registry's gate (ladle/runtimes/mlflow_gate.py)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from ladle.replica.confine import blocked_ancestor, mount_plan
from ladle.runtimes.mlflow_gate import Gate
from ladle.runtimes.sandbox import Sandbox, exec_env, job_env, server_child_env, worker_env

SERVER_ENV = {
    "LADLE_ADMIN_TOKEN": "dapi-admin", "LADLE_SECRET_KEY": "fernet-key", "LADLE_DATABASE_URL": "postgresql://u:pw@db/x",
    "MLFLOW_TRACKING_TOKEN": "mlflow-token", "AWS_SECRET_ACCESS_KEY": "aws", "DATABRICKS_TOKEN": "dbx",
    "HOME": "/root", "PATH": "/root/bin:/usr/bin", "LANG": "en_US.UTF-8", "HTTPS_PROXY": "http://proxy:3128",
    "PYTHONPATH": "/server/only",
}


def test_worker_env_holds_the_entity_env_and_a_minimal_base_only():
    env = worker_env("/envs/abc/bin/python", "/run/w-1/home", "/run/w-1/tmp",
                     entity_env={"MY_SETTING": "1", "API_KEY": "{{secrets/s/k}}"},
                     prepared_env={"API_KEY": "resolved", "PYTHONPATH": "/envs/_ladle"},
                     server_env=SERVER_ENV)
    assert env == {
        "PATH": "/envs/abc/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "en_US.UTF-8", "HTTPS_PROXY": "http://proxy:3128", "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": "/envs/_ladle", "HOME": "/run/w-1/home", "TMPDIR": "/run/w-1/tmp",
        "TMP": "/run/w-1/tmp", "TEMP": "/run/w-1/tmp", "MY_SETTING": "1", "API_KEY": "resolved",
    }


def test_a_worker_starts_without_its_secrets_they_come_with_the_job():
    started = exec_env("/usr/bin/python3", {"API_KEY": "resolved"}, SERVER_ENV)
    assert "API_KEY" not in started and not set(SERVER_ENV) - {"LANG", "HTTPS_PROXY", "PATH", "HOME"} & set(started)
    assert started["HOME"] == "/nonexistent" and started["LANG"] == "en_US.UTF-8"
    assert "PYTHONPATH" not in started  # the server's own PYTHONPATH is not the model's
    assert job_env("/h", "/t", {}, {"API_KEY": "resolved"})["API_KEY"] == "resolved"


def test_exec_env_sets_a_locale_when_the_server_has_none():
    assert exec_env("/usr/bin/python3", {}, {})["LANG"] == "C.UTF-8"


def test_server_child_env_drops_every_ladle_setting(monkeypatch):
    monkeypatch.setenv("LADLE_ADMIN_TOKEN", "x")
    monkeypatch.setenv("LADLE_SECRET_KEY", "y")
    env = server_child_env({"MLFLOW_TRACKING_TOKEN": "t"})
    assert not [k for k in env if k.startswith("LADLE_")] and env["MLFLOW_TRACKING_TOKEN"] == "t"


def _fake_stat(modes: dict[str, tuple[int, int, int]]):
    def stat_fn(path):
        mode, uid, gid = modes.get(path, (0o755, 0, 0))
        return SimpleNamespace(st_mode=stat.S_IFDIR | mode, st_uid=uid, st_gid=gid)
    return stat_fn


def test_blocked_ancestor_is_the_first_directory_the_uid_cannot_search():
    fs = _fake_stat({"/root": (0o700, 0, 0), "/srv/grp": (0o750, 0, 50)})
    assert blocked_ancestor("/root/.pyenv/versions/3.11/bin", 999, {999}, fs) == "/root"
    assert blocked_ancestor("/srv/grp/x", 999, {999}, fs) == "/srv/grp"
    assert blocked_ancestor("/srv/grp/x", 999, {50}, fs) is None   # searchable through its group
    assert blocked_ancestor("/usr/lib/python3", 999, {999}, fs) is None
    assert blocked_ancestor("/root/x", 0, {0}, fs) is None


def test_mount_plan_covers_ladle_home_and_blocked_dirs_and_shows_only_what_is_needed():
    fs = _fake_stat({"/root": (0o700, 0, 0), "/tmp/pytest-of-root": (0o700, 0, 0),
                     "/tmp/pytest-of-root/h": (0o700, 0, 0)})
    needed = {"/root/.pyenv/versions/3.11": True, "/root/.pyenv/versions/3.11/lib/python3.11": True,
              "/usr/lib/python3": True, "/tmp/pytest-of-root/h/run/w-1": False}
    plan = mount_plan(needed, ["/tmp/pytest-of-root/h"], 999, {999}, fs)
    assert sorted(plan) == [
        ("/root", [("/root/.pyenv/versions/3.11", True)]),
        ("/tmp/pytest-of-root", [("/tmp/pytest-of-root/h/run/w-1", False)]),
    ]
    # LADLE_HOME is covered even where the worker could search it (same uid, user namespace)
    assert mount_plan({"/srv/h/run/w-1": False}, ["/srv/h"], 0, {0}, fs) == [("/srv/h", [("/srv/h/run/w-1", False)])]


def test_sandbox_spec_and_scratch(tmp_path):
    sb = Sandbox("none", reason="test")
    scratch = sb.make_scratch(tmp_path)
    assert (scratch / "home").is_dir() and (scratch / "tmp").is_dir()
    assert stat.S_IMODE(scratch.stat().st_mode) == 0o700
    assert sb.spec(ro=[], rw=[str(scratch)]) == {"mode": "none", "uid": None, "gid": None, "hide": [],
                                                  "ro": [], "rw": [str(scratch)]}
    model = tmp_path / "m"
    model.mkdir()
    (model / "MLmodel").write_text("x")
    assert sb.place_model(str(model), scratch) == str(model)       # mode none: used in place
    assert Sandbox("userns", hide=[str(tmp_path / "elsewhere")]).place_model(str(model), scratch) == str(model)
    placed = Sandbox("userns", hide=[str(tmp_path)]).place_model(str(model), scratch)  # under LADLE_HOME
    assert placed == str(scratch / "model") and (scratch / "model" / "MLmodel").read_text() == "x"
    assert os.stat(model / "MLmodel").st_ino == os.stat(scratch / "model" / "MLmodel").st_ino  # a hard link


CONFINED = r'''
import json, os, sys
from ladle.replica.confine import confine
spec = json.loads(sys.argv[1])
confine(spec)
out = {"uid": os.getuid()}
for name in ("secret", "scratch"):
    p = sys.argv[2 if name == "secret" else 3]
    try:
        out[name] = open(p).read()
    except OSError as e:
        out[name] = type(e).__name__
try:
    with open(os.path.join(spec["rw"][0], "written"), "w") as f:
        f.write("ok")
    out["write"] = "ok"
except OSError as e:
    out["write"] = type(e).__name__
import ctypes
out["dumpable"] = ctypes.CDLL(None).prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE
print(json.dumps(out))
'''


LADLE_SRC = str(Path(__file__).resolve().parents[2])


def _confined(tmp_path: Path, spec_mode: dict, user: int | None = None, python: str = sys.executable) -> dict:
    home = tmp_path / "home"
    (home / "run" / "w-1").mkdir(parents=True)
    (home / "secrets.key").write_text("the key")
    scratch = home / "run" / "w-1"
    (scratch / "mine").write_text("my file")
    os.chmod(home, 0o700)
    if spec_mode.get("uid") is not None:
        os.chown(scratch, spec_mode["uid"], spec_mode["gid"])
    if user is not None:
        for p in (tmp_path, home, scratch, home / "run", home / "secrets.key", scratch / "mine"):
            os.chown(p, user, user)
    spec = {**spec_mode, "hide": [str(home)], "ro": [], "rw": [str(scratch)]}
    r = subprocess.run([python, "-c", CONFINED, json.dumps(spec), str(home / "secrets.key"),
                        str(scratch / "mine")], capture_output=True, text=True, timeout=60, user=user,
                       cwd="/", env={"PYTHONPATH": LADLE_SRC, "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a dedicated worker user)")
def test_confined_as_the_worker_user_sees_its_scratch_only(tmp_path):
    from ladle.runtimes.sandbox import ensure_user

    pw = ensure_user("ladle-worker")
    out = _confined(tmp_path, {"mode": "user", "uid": pw.pw_uid, "gid": pw.pw_gid})
    assert out == {"uid": pw.pw_uid, "secret": "FileNotFoundError", "scratch": "my file", "write": "ok",
                   "dumpable": 0}


SYSTEM_PYTHON = "/usr/bin/python3"  # one an unprivileged user can run (confine.py is stdlib only)


@pytest.mark.skipif(os.geteuid() != 0 or not os.access(SYSTEM_PYTHON, os.X_OK),
                    reason="runs the check as an unprivileged user: needs root to switch, and a system python")
def test_confined_in_a_user_namespace_ladle_home_is_hidden(tmp_path):
    probe = "import ctypes,sys; sys.exit(ctypes.CDLL(None).unshare(0x10020000))"
    if subprocess.run([SYSTEM_PYTHON, "-c", probe], user=65534, cwd="/").returncode != 0:
        pytest.skip("user namespaces are not allowed here")
    # pytest's tmp dir is root's (0700): the unprivileged user's LADLE_HOME lives under /tmp
    base = Path(tempfile.mkdtemp(prefix="ladle-test-userns-"))
    try:
        out = _confined(base, {"mode": "userns"}, user=65534, python=SYSTEM_PYTHON)
    finally:
        shutil.rmtree(base)
    assert out == {"uid": 65534, "secret": "FileNotFoundError", "scratch": "my file", "write": "ok", "dumpable": 0}


async def _app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"mlflow"})


@pytest.mark.parametrize("headers, status", [
    ({}, 401), ({"Authorization": "Bearer wrong"}, 401), ({"Authorization": "Basic s3cret"}, 401),
    ({"Authorization": "Bearer s3cret"}, 200),
])
async def test_the_registry_gate_lets_only_the_token_through(headers, status):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=Gate(_app, "s3cret")), base_url="http://t") as c:
        r = await c.get("/api/2.0/mlflow/experiments/search", headers=headers)
    assert r.status_code == status
    assert (r.text == "mlflow") == (status == 200)
    if status == 401:
        assert r.json()["error_code"] == "UNAUTHENTICATED"


def test_the_workers_control_socket_keeps_passed_fds_for_the_job_when_lines_arrive_together(tmp_path):
    import socket

    from ladle.replica.worker import Control

    server, worker = socket.socketpair()
    log = open(tmp_path / "log", "wb")
    try:
        server.sendall(b'{"confine": {"mode": "none"}}\n')
        socket.send_fds(server, [b'{"kind": "k"}\n'], [log.fileno(), log.fileno()])
        ctl = Control(worker.detach())
        assert ctl.recv() == {"confine": {"mode": "none"}}   # may have read the job's bytes and fds too
        assert ctl.recv() == {"kind": "k"}
        fds = ctl.take_fds(2)
        assert len(fds) == 2 and all(os.fstat(fd).st_ino == os.fstat(log.fileno()).st_ino for fd in fds)
        for fd in fds:
            os.close(fd)
        server.close()
        assert ctl.recv() is None
    finally:
        log.close()


def test_make_sandbox_checks_the_setting(tmp_path):
    from ladle.runtimes.sandbox import make_sandbox

    with pytest.raises(ValueError, match="LADLE_WORKER_ISOLATION must be one of"):
        make_sandbox("chroot", "ladle-worker", tmp_path)
    sb = make_sandbox("none", "ladle-worker", tmp_path)
    assert sb.mode == "none" and "scrubbed" in sb.describe()
    if os.geteuid() == 0:
        sb = make_sandbox("auto", "ladle-worker", tmp_path)
        assert sb.mode in ("user", "none"), sb.describe()
        if sb.mode == "user":  # LADLE_HOME made private to the server, workers not root
            assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700 and sb.uid != 0 and sb.user == "ladle-worker"
