"""`python -m ladle.demo`: register a small scikit-learn model in ladle's MLflow registry,
serve it as the endpoint `demo`, and print how to query it."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import httpx

from ladle.demo import model as demo_model


def main() -> None:
    url = os.environ["LADLE_URL"]
    cache = Path(os.environ.get("LADLE_CACHE_DIR") or os.path.expanduser("~/.cache/ladle"))
    t0 = time.monotonic()

    def say(what: str) -> None:
        print(f"ladle demo: {what} ({time.monotonic() - t0:.1f} s)", flush=True)

    token = _token(url)
    if token is None:
        say(f"the server at {url} did not start; giving up")
        raise SystemExit(1)
    headers = {"Authorization": f"Bearer {token}"}
    # The embedded registry (started with the server for the demo, else on its first call)
    # answers once its imports are done: a thread waits for it while this one gets the model.
    registry = threading.Thread(target=_wait_registry, args=(url, headers), daemon=True)
    registry.start()
    with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
        _wait(c, "/api/2.0/serving-endpoints/demo", (200, 404))
        if c.get("/api/2.0/serving-endpoints/demo").status_code == 200:
            say("endpoint 'demo' already exists")
        else:
            model_dir = demo_model.cached(cache)
            if model_dir is None:
                say("training a small scikit-learn model (iris); it is kept for the next demo")
                model_dir = demo_model.save(cache)
            if registry.is_alive():
                say("waiting for the embedded MLflow registry to start")
                registry.join()
            say(f"registering the model in {model_dir} as '{demo_model.MODEL_NAME}'")
            version = demo_model.register(c, model_dir)
            say(f"registered '{demo_model.MODEL_NAME}' version {version}; creating endpoint 'demo'")
            r = c.post("/api/2.0/serving-endpoints", json={
                "name": "demo",
                "config": {"served_entities": [{"entity_name": demo_model.MODEL_NAME, "entity_version": version,
                                                "workload_size": "Small", "scale_to_zero_enabled": False}]},
            })
            r.raise_for_status()
        say("waiting for endpoint 'demo' to be READY")
        st = _follow(c, say)
        say(f"endpoint 'demo' is {st.get('ready')} ({st.get('config_update')})")
    body = '{"dataframe_split": {"columns": ["sepal length (cm)", "sepal width (cm)", ' \
           '"petal length (cm)", "petal width (cm)"], "data": [[5.1, 3.5, 1.4, 0.2]]}}'
    print(f"""
Query it with curl:
  curl -s {url}/serving-endpoints/demo/invocations -H 'Authorization: Bearer {token}' \\
       -H 'Content-Type: application/json' -d '{body}'
with the Databricks SDK:
  DATABRICKS_HOST={url} DATABRICKS_TOKEN={token} python -c "from databricks.sdk import WorkspaceClient; \\
print(WorkspaceClient().serving_endpoints.query('demo', dataframe_records=[{{'sepal length (cm)': 5.1, \\
'sepal width (cm)': 3.5, 'petal length (cm)': 1.4, 'petal width (cm)': 0.2}}]))"
with the CLI:
  DATABRICKS_HOST={url} DATABRICKS_TOKEN={token} ladle serving-endpoints query demo --json '{body}'
""", flush=True)


def _wait(c: httpx.Client, path: str, ok: tuple[int, ...], tries: int = 1000) -> None:
    for _ in range(tries):
        try:
            if c.get(path).status_code in ok:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)


def _token(url: str, timeout_s: float = 300.0) -> str | None:
    """The admin token, once the server answers (None if it never does): from the
    environment, else from the file the server writes as it starts."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=url, timeout=10) as c:
        while True:
            try:
                if c.get("/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)
    if os.environ.get("LADLE_TOKEN"):
        return os.environ["LADLE_TOKEN"]
    return Path(os.environ["LADLE_TOKEN_FILE"]).read_text().strip()


def _wait_registry(url: str, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
        _wait(c, "/api/2.0/mlflow/registered-models/search", (200,))


def _follow(c: httpx.Client, say, timeout_s: float = 600.0) -> dict:
    """Until the endpoint is READY with no update in progress, or its update failed: its
    state (an existing endpoint's replica restarts with the server: NOT_READY, not updating,
    for a moment). Each new line of its build log is shown as it comes (the download, the
    environment, the replica's start)."""
    shown = 0
    deadline = time.monotonic() + timeout_s
    while True:
        ep = c.get("/api/2.0/serving-endpoints/demo").json()
        st = ep.get("state", {})
        done = (st.get("config_update") == "UPDATE_FAILED" or time.monotonic() > deadline
                or (st.get("config_update") != "IN_PROGRESS" and st.get("ready") == "READY"))
        entities = (ep.get("pending_config") or ep.get("config") or {}).get("served_entities") or []
        if entities and entities[0].get("name"):
            r = c.get(f"/api/2.0/serving-endpoints/demo/served-models/{entities[0]['name']}/build-logs")
            lines = r.json().get("logs", "").splitlines() if r.status_code == 200 else []
            for line in lines[shown:]:
                stamp, _, rest = line.partition(" ")
                say(f"  {rest if stamp.endswith('Z') and 'T' in stamp else line}")   # our own time instead
            shown = max(shown, len(lines))
        if done:
            return st
        time.sleep(0.2)

