"""`ladle server --demo` as a new user runs it (its home in pytest's deep temporary directory):
the endpoint `demo` comes up READY, answers the query the demo prints, the new home's registry
database came from the cache and the demo's model was saved there, and Ctrl-C stops it cleanly."""

from __future__ import annotations

import os
import secrets
import signal
import sqlite3

import httpx
import mlflow

from ladle.testing.process import LADLE_ARGV, ChildProcess, child_env, free_port

ROW = {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4, "petal width (cm)": 0.2}


def test_demo_serves_the_model_it_prints_how_to_query(tmp_path):
    home, cache = tmp_path / "home", tmp_path / "cache"
    port, token = free_port(), "dapi" + secrets.token_hex(16)
    env = child_env({"HOME": str(tmp_path), "LADLE_HOME": str(home), "LADLE_ADMIN_TOKEN": token,
                     "LADLE_CACHE_DIR": str(cache), "LADLE_GATEWAY_WORKERS": "2"})   # as on 2 cores
    proc = ChildProcess([*LADLE_ARGV, "server", "--port", str(port), "--demo"], tmp_path / "server.log", env)
    proc.start()
    url = f"http://127.0.0.1:{port}"
    try:
        proc.wait_http(f"{url}/api/2.0/serving-endpoints/demo", 240,
                       headers={"Authorization": f"Bearer {token}"},
                       ok=lambda r: r.status_code == 200 and r.json()["state"].get("ready") == "READY")
        proc.wait_http(f"{url}/health", 30, ok=lambda r: "Query it with curl" in proc.output())
        assert f"curl -s {url}/serving-endpoints/demo/invocations" in proc.output()
        r = httpx.post(f"{url}/serving-endpoints/demo/invocations", headers={"Authorization": f"Bearer {token}"},
                       json={"dataframe_records": [ROW]}, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == [0]          # setosa
        assert "ladle demo: endpoint 'demo' is READY" in proc.output()
        # Ctrl-C in its terminal (SIGINT to the process group): a clean stop, exit status 0
        os.killpg(proc.proc.pid, signal.SIGINT)
        assert proc.proc.wait(60) == 0, proc.output()[-2000:]
        assert "ladle: stopped" in proc.output() and "Aborted!" not in proc.output()
    finally:
        proc.stop()
    assert "ladle demo: training a small scikit-learn model" in proc.output()   # an empty cache
    assert [p.name for p in (cache / "demo-model").glob("*/MLmodel")] == ["MLmodel"]   # saved for the next demo
    cached = cache / "mlflow-db" / mlflow.__version__ / "mlflow.db"
    assert cached.exists()
    with sqlite3.connect(cached) as c:   # the cache stays empty: the home got a copy
        assert c.execute("SELECT count(*) FROM registered_models").fetchone() == (0,)
    c.close()
    with sqlite3.connect(home / "mlflow" / "mlflow.db") as c:
        assert c.execute("SELECT name FROM registered_models").fetchall() == [("demo-iris",)]
    c.close()
