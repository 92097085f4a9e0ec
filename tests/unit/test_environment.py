"""Model environments: reuse the server's when it satisfies the requirements, otherwise a
real uv-built virtual environment, cached by the requirements' hash."""

import asyncio
import subprocess
import sys

import pytest

from ladle.entities.environment import python_for, read_requirements, unmet
from ladle.entities.prepare import run_logged


def test_unmet_reads_the_running_environment():
    import pydantic

    assert unmet([f"pydantic=={pydantic.VERSION}", "packaging"]) == []
    missing = unmet(["pydantic<1", "surely-not-a-package-xyz", "foo; python_version < '2'"])
    assert missing[0].startswith("pydantic<1 (have ") and missing[1] == "surely-not-a-package-xyz"
    assert len(missing) == 2


def test_reuses_server_environment(tmp_path):
    (tmp_path / "requirements.txt").write_text("# comment\npackaging\n-r other.txt\n")
    assert read_requirements(tmp_path) == ["packaging"]
    logs = []

    async def no_run(argv, env):
        raise AssertionError("nothing should be built")

    python, extra = asyncio.run(python_for(tmp_path, tmp_path / "envs", logs.append, no_run))
    assert python == sys.executable and extra == {}
    assert "reusing it" in logs[0]


@pytest.mark.timeout(300)
def test_builds_and_caches_a_uv_environment(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "requirements.txt").write_text("six==1.16.0\npydantic<1.0\n")
    logs: list[str] = []
    run = lambda argv, env: run_logged(argv, logs.append, env)  # noqa: E731
    python, extra = asyncio.run(python_for(model, tmp_path / "envs", logs.append, run))
    assert python != sys.executable and "PYTHONPATH" in extra
    out = subprocess.run([python, "-c", "import six, pydantic; print(six.__version__, pydantic.VERSION)"],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("1.16.0 0.")  # what the model asked for, not the server's pydantic 2
    # ladle's replica modules are importable there through the private path
    subprocess.run([python, "-c", "import ladle.replica.protocol"], env={"PYTHONPATH": extra["PYTHONPATH"]},
                   check=True)
    logs.clear()
    again, _ = asyncio.run(python_for(model, tmp_path / "envs", logs.append, run))
    assert again == python and any("Reusing cached environment" in line for line in logs)
