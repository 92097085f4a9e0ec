"""Replicas forked from the replica template (the server's own environment): a forked replica
answers exactly as a freshly started one does, and a template that dies is replaced so that
the next replica still starts (forked from the new template)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import psutil
import pytest

from ladle.runtimes.base import Prepared
from ladle.runtimes.local_replica import LocalReplica
from ladle.runtimes.sandbox import Sandbox
from ladle.runtimes.template import Template
from ladle.runtimes.worker_launch import Launcher

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3], [5.9, 3.0, 5.1, 1.8]]


@pytest.fixture(scope="module")
def iris(tmp_path_factory) -> tuple[str, list[int]]:
    import mlflow.sklearn
    import sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True, as_frame=True)
    est = LogisticRegression(max_iter=500).fit(x, y)
    d = tmp_path_factory.mktemp("models") / "iris"
    mlflow.sklearn.save_model(est, str(d), input_example=x.head(3),
                              pip_requirements=[f"mlflow=={mlflow.__version__}",
                                                f"scikit-learn=={sklearn.__version__}"])
    return str(d), [int(v) for v in est.predict(x.__class__(ROWS, columns=x.columns))]


async def _predict(r: LocalReplica) -> dict:
    body = json.dumps({"dataframe_split": {"columns": ["sepal length (cm)", "sepal width (cm)",
                                                       "petal length (cm)", "petal width (cm)"],
                                           "data": ROWS}}).encode()
    reply = await r.call({"content_type": "application/json"}, body)
    assert reply.status == 200
    return json.loads(await reply.read())


async def _start(launcher: Launcher, model_dir: str, run: Path, n: int) -> LocalReplica:
    r = LocalReplica(Prepared(sys.executable, model_dir), run / f"r{n}.sock", run / f"r{n}.log",
                     2, {}, "mlflow_pyfunc", launcher)
    await r.start(120.0)
    return r


def _parent(pid: int) -> int:
    return psutil.Process(pid).ppid()


def test_forked_replica_answers_as_a_fresh_one_and_a_dead_template_is_replaced(iris, tmp_path):
    iris_dir, classes = iris

    async def scenario() -> None:
        run = tmp_path / "run"
        run.mkdir()
        sandbox = Sandbox("none", reason="test")
        template = Template(start_timeout=120.0)
        forking, fresh_only = Launcher(sandbox, run, template), Launcher(sandbox, run)
        started: list[LocalReplica] = []
        try:
            # both at once (each pays its imports: the fresh worker's, the template's)
            both = await asyncio.gather(_start(fresh_only, iris_dir, run, 0),
                                        _start(forking, iris_dir, run, 1), return_exceptions=True)
            started += [r for r in both if isinstance(r, LocalReplica)]
            for r in both:
                if isinstance(r, BaseException):
                    raise r
            fresh, forked = both
            first_template = template.proc.pid
            assert _parent(forked.pid) == first_template       # forked, not started
            assert _parent(fresh.pid) == os.getpid()
            expected = await _predict(fresh)
            assert expected == {"predictions": classes}
            assert await _predict(forked) == expected

            os.kill(first_template, signal.SIGKILL)
            again = await _start(forking, iris_dir, run, 2)
            started.append(again)
            assert template.proc.pid != first_template and template.starts == 2
            assert _parent(again.pid) == template.proc.pid
            assert await _predict(again) == expected
            assert forked.alive and await _predict(forked) == expected  # its template's death spared it

            await again.kill()                                  # the exit code comes from the template
            assert again.proc.returncode == -signal.SIGTERM
        finally:
            for r in started:
                await r.kill()
            await template.close()

    asyncio.run(scenario())
