"""The MLflow adapter's contract tests (test_mlflow_adapter_contract.py) against the oldest and
the newest MLflow that pyproject.toml allows, each in its own environment built by uv.

The oldest: a virtual environment in a temporary directory with `mlflow==<floor>` and what the
contract tests need (scikit-learn, httpx, pytest), resolved by uv from the package index as a
user's install would be (so its other packages are those uv picks for that MLflow today). The
newest: this suite's own environment when its MLflow is the newest allowed (the contract tests
run in it with the rest of the suite), else a third environment built the same way.

The environments are built without `--compile-bytecode`: compiling every installed package
(scipy, pandas, matplotlib...) costs far more CPU than the few modules the tests import.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = Path(__file__).with_name("test_mlflow_adapter_contract.py")
NEEDS = ("scikit-learn", "httpx", "pytest")
BUILD_TIMEOUT_S = 600


def allowed() -> Requirement:
    """The `mlflow` requirement of pyproject.toml's dependencies."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return next(r for r in map(Requirement, deps) if r.name == "mlflow")


def floor(req: Requirement) -> str:
    lows = [s.version for s in req.specifier if s.operator in (">=", "==", "~=")]
    assert lows, f"pyproject.toml sets no lowest MLflow version: {req}"
    return lows[0]


def _uv() -> str:
    from ladle.entities.environment import uv_binary

    return uv_binary()


def newest(req: Requirement) -> str:
    """The newest MLflow the requirement allows that installs (its dependencies resolve), as
    uv resolves it from the index now."""
    out = subprocess.run([_uv(), "pip", "compile", "-q", "--python-version",
                          f"{sys.version_info.major}.{sys.version_info.minor}", "-"],
                         input=str(req), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return re.search(r"^mlflow==(\S+)", out.stdout, re.M).group(1)


class ContractRun:
    """Builds one environment with `mlflow==version` and runs the contract tests in it, in
    the background: a shell pipeline whose output goes to a file."""

    def __init__(self, version: str, workdir: Path) -> None:
        self.version = version
        self.dir = workdir / f"mlflow-{version}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "run.log"
        env = self.dir / "venv"
        py = env / "bin" / "python"
        uv = _uv()
        build = [[uv, "venv", "-q", str(env), "--python", sys.executable],
                 [uv, "pip", "install", "-q", "--python", str(py), f"mlflow=={version}", *NEEDS]]
        test = [str(py), "-m", "pytest", "-q", "--noconftest", "-p", "no:cacheprovider",
                "-p", "no:randomly", "-o", "addopts=", "-W", "ignore::DeprecationWarning", str(CONTRACT)]
        script = " && ".join(" ".join(_quote(a) for a in cmd) for cmd in (*build, test))
        child_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "MLFLOW_"))}
        child_env.update(PYTHONPATH=str(ROOT), MLFLOW_TRACKING_URI=f"sqlite:///{self.dir / 'mlflow.db'}",
                         TMPDIR=str(self.dir))
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(["bash", "-c", script], cwd=ROOT, env=child_env, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def result(self) -> tuple[int, str]:
        try:
            rc = self.proc.wait(timeout=BUILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        return rc, self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


@pytest.fixture(scope="module")
def envs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mlflow-envs")


def _check(run: ContractRun) -> None:
    rc, log = run.result()
    tail = "\n".join(log.splitlines()[-40:])
    assert rc == 0, f"contract tests against MLflow {run.version} (exit {rc}):\n{tail}"
    installed = [Version(p.name[len("mlflow-"):-len(".dist-info")])
                 for p in (run.dir / "venv").glob("lib/python*/site-packages/mlflow-*.dist-info")]
    assert installed == [Version(run.version)], installed
    summary = [ln for ln in log.splitlines() if re.search(r" in [\d.]+s\b", ln)][-1]
    assert re.search(r"\b\d+ passed\b", summary) and not re.search(r"failed|error|skipped", summary), tail


def test_contract_holds_on_the_oldest_allowed_mlflow(envs_dir):
    run = ContractRun(floor(allowed()), envs_dir)
    try:
        _check(run)
    finally:
        run.stop()


def test_contract_holds_on_the_newest_allowed_mlflow(envs_dir):
    import mlflow

    latest = newest(allowed())
    if mlflow.__version__ == latest:
        pytest.skip(f"this suite's MLflow {latest} is the newest allowed: the contract tests run "
                    "on it in this suite (test_mlflow_adapter_contract.py)")
    run = ContractRun(latest, envs_dir)
    try:
        _check(run)
    finally:
        run.stop()
