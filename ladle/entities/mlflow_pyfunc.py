"""The MLflow pyfunc entity kind: load a logged model and score it exactly as
`mlflow models serve` does (MLflow's own framework-neutral `invocations()`), so the same
input gives the same JSON.

Imported inside replica processes; MLflow is imported lazily, on load.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def _error(status: int, code: str, message: str) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps({"error_code": code, "message": message}).encode()


class PyfuncEntity:
    def __init__(self, model: Any) -> None:
        self.model = model
        self.input_schema = model.metadata.get_input_schema()

    @classmethod
    def load(cls, model_dir: str) -> "PyfuncEntity":
        import mlflow.pyfunc

        return cls(mlflow.pyfunc.load_model(model_dir))

    def predict(self, meta: dict, body: bytes) -> tuple[int, str, bytes]:
        from mlflow.exceptions import MlflowException
        from mlflow.pyfunc import scoring_server

        content_type = meta.get("content_type") or "application/json"
        try:
            r = scoring_server.invocations(body, content_type, self.model, self.input_schema)
        except MlflowException as e:
            code = e.error_code if e.error_code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST") else "BAD_REQUEST"
            status = e.get_http_status_code()
            if status >= 500:
                print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} model error: {e.message}", file=sys.stderr, flush=True)
                return _error(500, "INTERNAL_ERROR", e.message)
            return _error(status, code, e.message)
        if r.status != 200:
            return _error(r.status if r.status < 500 else 400, "BAD_REQUEST", str(r.response))
        body_out = r.response.encode() if isinstance(r.response, str) else r.response
        return 200, r.mimetype, body_out
