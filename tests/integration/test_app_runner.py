"""The app runner with real processes: a tiny stdlib HTTP app in a temp folder, an empty
requirements.txt (the uv build is a bare venv, cached), confined as model workers are."""

from __future__ import annotations

import os

import httpx
import pytest

from tests.integration.tiny_app import get, launch, make_source, runner, until  # noqa: F401 (fixture)


async def test_deploy_serves_then_a_failed_deployment_keeps_the_previous_one(runner):
    progress: list[str] = []
    await runner.deploy(launch(runner, "d1"), progress.append)
    assert runner.status("demo") == ("ACTIVE", "RUNNING", "App is running.")
    r = await get(runner, "/hello")
    body = r.json()
    assert body["path"] == "/hello" and body["version"] == "d1" and body["secret"] == "s3cret"
    assert body["dumpable"] == 0      # its /proc/<pid>/environ (the secret) is closed to other apps
    assert any("environment" in p for p in progress)
    if runner.sandbox.mode != "none":   # LADLE_HOME is covered in the app's mount namespace
        assert body["home_probe"] == "FileNotFoundError"
    if runner.sandbox.mode == "user":
        assert body["uid"] == runner.sandbox.uid != 0
    port = runner.port("demo")

    # a command that exits at once: fails naming the exit, d1 keeps serving
    with pytest.raises(RuntimeError, match="exited with code 2 before it listened"):
        await runner.deploy(launch(runner, "d2", command=["python", "-c", "import sys; sys.exit(2)"]),
                            lambda _: None)
    assert runner.port("demo") == port and (await get(runner)).json()["version"] == "d1"

    # no requirements.txt: fails naming the file
    src = make_source(runner.home, "d3", requirements=None)
    with pytest.raises(RuntimeError, match="requirements.txt"):
        await runner.deploy(launch(runner, "d3", source=src), lambda _: None)

    # an app that never listens: times out with a clear message
    runner.start_timeout_s = 1.5
    with pytest.raises(RuntimeError, match="did not listen on its port"):
        await runner.deploy(launch(runner, "d4", command=["python", "-c", "import time; time.sleep(60)"]),
                            lambda _: None)
    assert (await get(runner)).json()["version"] == "d1"
    runner.start_timeout_s = 20

    # a good one replaces d1 on a new port; the old process is gone
    await runner.deploy(launch(runner, "d5"), lambda _: None)
    assert runner.port("demo") != port and (await get(runner)).json()["version"] == "d5"
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as c:
            await c.get(f"http://127.0.0.1:{port}/")

    log = runner.log_path("demo").read_text()
    assert "app starting on" in log and "deployment d2 failed" in log and "request /hello" in log
    assert "s3cret" not in log


async def test_a_crashed_app_is_restarted_with_back_off_and_status_says_so(runner):
    await runner.deploy(launch(runner, "d1"), lambda _: None)
    first = runner.port("demo")
    with pytest.raises(httpx.HTTPError):
        await get(runner, "/exit")
    await until(lambda: runner.status("demo")[1] == "CRASHED")
    compute, state, message = runner.status("demo")
    assert compute == "ACTIVE" and "restart 1 in" in message and "exited with code 1" in message
    await until(lambda: runner.port("demo") is not None)
    assert runner.port("demo") != first and (await get(runner)).json()["version"] == "d1"
    assert runner.status("demo") == ("ACTIVE", "RUNNING", "App is running.")
    assert "restarted, listening" in runner.log_path("demo").read_text()

    # an app that no longer starts: restarts go on, each waiting longer, status says why
    src = runner._apps["demo"].good[0].source_dir
    (src / "app.py").write_text("raise SystemExit(5)\n")
    with pytest.raises(httpx.HTTPError):
        await get(runner, "/exit")
    await until(lambda: "restart 3 in" in runner.status("demo")[2])
    assert "exited with code 5 before it listened" in runner.status("demo")[2]
    assert runner.status("demo")[:2] == ("ACTIVE", "CRASHED") and runner.port("demo") is None

    def waits() -> list[float]:
        log = runner.log_path("demo").read_text()
        return [float(line.split(" in ")[1].split("s.")[0]) for line in log.splitlines() if "; restart " in line]

    await until(lambda: len(waits()) >= 3)      # the status can say it before the log line is written
    w = waits()
    assert w[-3:] == sorted(w[-3:]) and w[-1] > w[-3]


async def test_stop_and_start_run_the_last_good_deployment(runner):
    await runner.deploy(launch(runner, "d1"), lambda _: None)
    await runner.stop("demo")
    assert runner.status("demo")[:2] == ("STOPPED", "UNAVAILABLE") and runner.port("demo") is None
    await runner.start("demo")
    assert runner.status("demo")[:2] == ("ACTIVE", "RUNNING")
    assert (await get(runner)).json()["version"] == "d1"
