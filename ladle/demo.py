"""`python -m ladle.demo`: register a small scikit-learn model in ladle's MLflow registry,
serve it as the endpoint `demo`, and print how to query it."""

from __future__ import annotations

import os
import threading
import time

import httpx


def main() -> None:
    url, token = os.environ["LADLE_URL"], os.environ["LADLE_TOKEN"]
    headers = {"Authorization": f"Bearer {token}"}
    # The embedded registry starts on its first call: a thread makes that call at once (when
    # the server answers) while this one imports MLflow and trains the model.
    registry = threading.Thread(target=_wait_registry, args=(url, headers), daemon=True)
    registry.start()
    with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
        _wait(c, "/api/2.0/serving-endpoints/demo", (200, 404))
        if c.get("/api/2.0/serving-endpoints/demo").status_code == 200:
            print("ladle demo: endpoint 'demo' already exists", flush=True)
        else:
            model, example = _train()
            registry.join()
            version = _register(url, token, model, example)
            r = c.post("/api/2.0/serving-endpoints", json={
                "name": "demo",
                "config": {"served_entities": [{"entity_name": "demo-iris", "entity_version": version,
                                                "workload_size": "Small", "scale_to_zero_enabled": False}]},
            })
            r.raise_for_status()
        print("ladle demo: waiting for endpoint 'demo' to be READY", flush=True)
        for _ in range(600):
            st = c.get("/api/2.0/serving-endpoints/demo").json().get("state", {})
            if st.get("config_update") != "IN_PROGRESS":
                break
            time.sleep(0.5)
        print(f"ladle demo: endpoint 'demo' is {st.get('ready')} ({st.get('config_update')})", flush=True)
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


def _wait(c: httpx.Client, path: str, ok: tuple[int, ...], tries: int = 400) -> None:
    for _ in range(tries):
        try:
            if c.get(path).status_code in ok:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)


def _wait_registry(url: str, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
        _wait(c, "/api/2.0/mlflow/registered-models/search", (200,))


def _train():
    """The model and an input example (no registry needed). What logging the model imports
    (MLflow, skops: MLflow saves scikit-learn models with it) is imported here too, so that
    its import overlaps the registry's start."""
    import mlflow.sklearn  # noqa: F401
    import skops.io  # noqa: F401
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    return LogisticRegression(max_iter=300).fit(X, y), X.head(3)


def _register(url: str, token: str, model, example) -> str:
    os.environ["MLFLOW_TRACKING_URI"] = url
    os.environ["MLFLOW_TRACKING_TOKEN"] = token
    import mlflow
    import mlflow.sklearn
    import skops
    import sklearn

    # Requirements named here: otherwise MLflow infers them by loading the model in a new
    # process (seconds)
    reqs = [f"mlflow=={mlflow.__version__}", f"scikit-learn=={sklearn.__version__}",
            f"skops=={skops.__version__}"]
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", input_example=example, pip_requirements=reqs,
                                        registered_model_name="demo-iris")
    return str(info.registered_model_version)


if __name__ == "__main__":
    main()
