"""Source of small MLflow models-from-code that tests register (mlflow's `python_model` as a
file): a chat model that streams slowly and records each chunk it makes, and a model that
cannot load. Plain strings: nothing runs at import time."""

from __future__ import annotations

STREAMING_PYFUNC_CODE = '''
import os
import time

import mlflow
from mlflow.pyfunc import PythonModel


class Streamer(PythonModel):
    """Answers predict with one message and predict_stream with N chat chunks, slowly; each
    chunk produced is recorded in the file LADLE_TEST_MARKER names (so a test can see
    generation stop)."""

    def predict(self, context, model_input, params=None):
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": "unary"}}]}

    def predict_stream(self, context, model_input, params=None):
        given = model_input if isinstance(model_input, dict) else {}
        n = int(given.get("max_tokens") or (params or {}).get("max_tokens") or 5)
        marker = os.environ.get("LADLE_TEST_MARKER")
        for i in range(n):
            if marker:
                with open(marker, "a") as f:
                    f.write(f"{i}\\n")
            yield {"object": "chat.completion.chunk", "model": "streamer",
                   "choices": [{"index": 0, "delta": {"content": f"tok{i} "}, "finish_reason": None}]}
            time.sleep(0.15)


mlflow.models.set_model(Streamer())
'''


def broken_model_code(message: str) -> str:
    """A model whose load_context raises RuntimeError(message)."""
    return f'''
import mlflow
from mlflow.pyfunc import PythonModel


class Broken(PythonModel):
    def load_context(self, context):
        raise RuntimeError("{message}")

    def predict(self, context, model_input, params=None):
        return model_input


mlflow.models.set_model(Broken())
'''
