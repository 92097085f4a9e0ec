"""The benchmark's models and request bodies.

A RandomForestClassifier (50 trees) and a LogisticRegression on the same 20 features
(make_classification, fixed seeds), both logged with a signature and an input example,
and a no-op pyfunc model (answers its input's length) for the gateway-overhead number.
All are registered with the real MLflow client through ladle's registry.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

RF = "main.default.bench_rf"
LR = "main.default.bench_lr"
NOOP = "main.default.bench_noop"
N_FEATURES = 20
N_SAMPLES = 2100          # 2000 rows for 20 x 100-row identity checks, plus spare rows
COLUMNS = [f"f{i}" for i in range(N_FEATURES)]

NOOP_CODE = '''
import mlflow
from mlflow.pyfunc import PythonModel


class Noop(PythonModel):
    """Does nothing: answers the number of input rows."""

    def predict(self, context, model_input, params=None):
        return [len(model_input)]


mlflow.models.set_model(Noop())
'''

NOOP_BODY = b'{"inputs": [1]}'


@dataclass
class Data:
    x: "object"   # pandas DataFrame, columns f0..f19
    y: "object"


def make_data() -> Data:
    import pandas as pd
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=N_SAMPLES, n_features=N_FEATURES, n_informative=10,
                               n_redundant=4, n_classes=3, random_state=0)
    return Data(pd.DataFrame(x, columns=COLUMNS), pd.Series(y, name="target"))


def body(data: Data, start: int, rows: int) -> bytes:
    """A `dataframe_split` body of rows [start, start+rows). Floats go through JSON as
    Python writes them, so both servers parse the same numbers."""
    part = data.x.iloc[start:start + rows]
    return json.dumps({"dataframe_split": {"columns": COLUMNS, "data": part.values.tolist()}},
                      separators=(",", ":")).encode()


@contextlib.contextmanager
def quiet_mlflow(log_path: Path):
    """MLflow's client chatter (run URLs, registration notes, progress bars, warnings)
    goes to a file instead of between the benchmark's tables."""
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    with open(log_path, "a") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logger = logging.getLogger("mlflow")
        level = logger.level
        logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            logger.setLevel(level)


def register_all(tracking_uri: str, token: str, data: Data, workdir: Path) -> dict[str, str]:
    """Train and register the three models; returns {name: version}."""
    with quiet_mlflow(workdir / "mlflow-client.log"):
        return _register_all(tracking_uri, token, data, workdir)


def _register_all(tracking_uri: str, token: str, data: Data, workdir: Path) -> dict[str, str]:
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    os.environ["MLFLOW_TRACKING_TOKEN"] = token
    import mlflow
    import sklearn
    from mlflow.models import infer_signature
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    mlflow.set_experiment("ladle-bench")
    reqs = [f"mlflow=={mlflow.__version__}", f"scikit-learn=={sklearn.__version__}"]
    try:   # MLflow 3 saves scikit-learn models with skops by default
        import skops

        reqs.append(f"skops=={skops.__version__}")
    except ImportError:
        pass
    versions = {}
    for name, est in ((RF, RandomForestClassifier(n_estimators=50, random_state=0)),
                      (LR, LogisticRegression(max_iter=1000, random_state=0))):
        est.fit(data.x, data.y)
        sig = infer_signature(data.x, est.predict(data.x.head(50)))
        with mlflow.start_run(run_name=name.rsplit(".", 1)[-1]):
            info = mlflow.sklearn.log_model(est, name="model", signature=sig, input_example=data.x.head(3),
                                            registered_model_name=name, pip_requirements=reqs,
                                            **_skops_trust(mlflow.sklearn.log_model))
        versions[name] = str(info.registered_model_version)
    code = workdir / "noop_model.py"
    code.write_text(NOOP_CODE)
    with mlflow.start_run(run_name="noop"):
        info = mlflow.pyfunc.log_model(name="model", python_model=str(code), registered_model_name=NOOP,
                                       pip_requirements=[f"mlflow=={mlflow.__version__}"])
    versions[NOOP] = str(info.registered_model_version)
    return versions


def _skops_trust(log_model) -> dict:
    """MLflow 3 stores scikit-learn models with skops, which loads tree models only when
    their node type is trusted; we built these trees here."""
    import inspect

    if "skops_trusted_types" in inspect.signature(log_model).parameters:
        return {"skops_trusted_types": ["sklearn.tree._tree.Tree"]}
    return {}


def download(name: str, version: str, dst: Path) -> Path:
    """The registered model's files, for `mlflow models serve -m DIR`."""
    import mlflow.artifacts

    dst.mkdir(parents=True, exist_ok=True)
    with quiet_mlflow(dst.parent / "mlflow-client.log"):
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}",
                                                        dst_path=str(dst)))
