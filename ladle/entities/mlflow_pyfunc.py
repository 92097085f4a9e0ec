"""The MLflow pyfunc entity kind: load a logged model and score it exactly as
`mlflow models serve` does (MLflow's own framework-neutral `invocations()`), so the same
input gives the same JSON.

A model with `predict_stream` (ChatModel, ResponsesAgent, a pyfunc that defines it) asked
with `"stream": true` answers Server-Sent Events: one `data: {chunk}` per chunk it yields,
then `data: [DONE]`.

Falling back from one batched model call to one call per request is logged once per model
and reason (a warning in the replica's log), since it costs throughput.

What this takes from MLflow's internals goes through ladle.entities.mlflow_adapter.
Imported inside replica processes; MLflow is imported lazily, on load.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import Any, Iterator

from ladle.entities import mlflow_adapter

log = logging.getLogger(__name__)


def _error(status: int, code: str, message: str) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps({"error_code": code, "message": message}).encode()


NUMERIC = {"double", "float", "long", "integer"}


class PyfuncEntity:
    def __init__(self, model: Any) -> None:
        self.model = model
        self._fallbacks_logged: set[str] = set()
        _skip_agent_input_schema(model)
        self.input_schema = model.metadata.get_input_schema()
        self.columns = _numeric_columns(self.input_schema)
        self.direct = _direct_predict(model, self.input_schema) if self.columns else None

    def _predict_rows(self, rows: list[list]) -> Any:
        """Predict plain numeric rows. When every column is a double and the flavor is
        scikit-learn, the frame is built as float64 in signature order, which is exactly what
        MLflow's schema enforcement would produce, so the flavor's own predict is called
        without repeating that check."""
        import pandas as pd

        if self.direct is not None:
            import numpy as np

            return self.direct(pd.DataFrame(np.asarray(rows, dtype=np.float64), columns=self.columns))
        return self.model.predict(pd.DataFrame(rows, columns=self.columns))

    @classmethod
    def load(cls, model_dir: str) -> "PyfuncEntity":
        import mlflow.pyfunc

        return cls(mlflow.pyfunc.load_model(model_dir))

    @property
    def streams(self) -> bool:
        return mlflow_adapter.supports_streaming(self.model)

    def _fallback(self, kind: str, reason: str) -> None:
        """Log, once per model and kind of reason, that a batch is predicted one by one."""
        if kind not in self._fallbacks_logged:
            self._fallbacks_logged.add(kind)
            log.warning("batched prediction falls back to one call per request: %s "
                        "(logged once for this model)", reason)

    def predict(self, meta: dict, body: bytes, cancel: threading.Event | None = None):
        from mlflow.exceptions import MlflowException

        content_type = meta.get("content_type") or "application/json"
        if self.streams and content_type.split(";")[0].strip() == "application/json":
            try:
                data = json.loads(body)
            except ValueError:
                data = None
            if isinstance(data, dict) and data.get("stream") is True:
                return 200, "text/event-stream", self._stream(data, cancel)
        try:
            status, mimetype, body_out = mlflow_adapter.score(self.model, self.input_schema, body, content_type)
        except MlflowException as e:
            code = e.error_code if e.error_code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST") else "BAD_REQUEST"
            status = e.get_http_status_code()
            if status >= 500:
                print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} model error: {e.message}", file=sys.stderr, flush=True)
                return _error(500, "INTERNAL_ERROR", e.message)
            return _error(status, code, e.message)
        if status != 200:
            return _error(status if status < 500 else 400, "BAD_REQUEST", body_out.decode(errors="replace"))
        return 200, mimetype, body_out

    def _stream(self, data: dict, cancel: threading.Event | None) -> Iterator[bytes]:
        from mlflow.exceptions import MlflowException

        from ladle.schemas.errors import ApiError
        from ladle.schemas.llm import SSE_DONE, sse

        payload = json.dumps({k: v for k, v in data.items() if k != "stream"})
        gen = None
        try:
            data_in, params = mlflow_adapter.parse_request(self.model, self.input_schema, payload)
            gen = self.model.predict_stream(data_in, params)
            for chunk in gen:
                if cancel is not None and cancel.is_set():
                    return
                yield sse(chunk)
            yield SSE_DONE
        except MlflowException as e:
            if e.get_http_status_code() >= 500:
                raise ApiError("INTERNAL_ERROR", e.message, 500) from None
            raise ApiError("BAD_REQUEST", e.message, 400) from None
        finally:
            if gen is not None and hasattr(gen, "close"):
                gen.close()


    def predict_batch(self, items: list[tuple[dict, bytes]]) -> list[tuple[int, str, bytes]]:
        """Predict several requests in one model call when they are plain numeric frames;
        anything else (or any error) goes through `predict` one by one, so answers and
        error messages are exactly those of `mlflow models serve`."""
        if self.columns is None:
            if len(items) > 1:
                self._fallback("schema", "the model's input schema is not all named numeric columns")
            return [self.predict(m, b) for m, b in items]
        rows_per, all_rows = [], []
        for i, (meta, body) in enumerate(items):
            rows = _rows(meta, body, self.columns)
            if rows is None:
                if len(items) > 1:
                    self._fallback("request", f"request {i + 1} of a batch of {len(items)} is not "
                                   "a JSON dataframe_split/dataframe_records of numbers in the "
                                   "signature's columns")
                return [self.predict(m, b) for m, b in items]
            rows_per.append(len(rows))
            all_rows.extend(rows)
        try:
            out = self._predict_rows(all_rows)
            if len(out) != len(all_rows):
                raise ValueError(f"the model answered {len(out)} rows for {len(all_rows)}")
            results, start = [], 0
            for n in rows_per:
                results.append((200, "application/json",
                                mlflow_adapter.predictions_json(_slice(out, start, start + n))))
                start += n
            return results
        except Exception as e:
            self._fallback("error", f"the batched model call failed: {e!r}")
            return [self.predict(m, b) for m, b in items]


RESPONSES_AGENT_TASK = "agent/v1/responses"


def _skip_agent_input_schema(model: Any) -> None:
    """A ResponsesAgent's logged input schema is narrower than the Responses API (it refuses a
    function tool's `name` and `parameters`), so the replica drops that
    check for `agent/v1/responses` models; the agent's own request model
    (`ResponsesAgentRequest`) still validates the body."""
    if (model.metadata.metadata or {}).get("task") == RESPONSES_AGENT_TASK:
        mlflow_adapter.drop_input_schema(model)


def _direct_predict(model: Any, schema: Any) -> Any:
    types = {getattr(t, "name", str(t)) for t in schema.input_types()}
    if types != {"double"}:
        return None
    if schema.has_input_names() is False or getattr(model.metadata, "get_params_schema", lambda: None)():
        return None
    return mlflow_adapter.sklearn_predict(model)


def _numeric_columns(schema: Any) -> list[str] | None:
    if schema is None or schema.is_tensor_spec():
        return None
    names = schema.input_names()
    types = [getattr(t, "name", str(t)) for t in schema.input_types()]
    if not names or any(n is None for n in names) or any(t not in NUMERIC for t in types):
        return None
    return list(names)


def _loads(body: bytes) -> Any:
    try:
        import orjson

        return orjson.loads(body)
    except ImportError:
        return json.loads(body)


def _rows(meta: dict, body: bytes, columns: list[str]) -> list[list] | None:
    """The request's rows in schema column order, or None if it needs the general path."""
    ctype = (meta.get("content_type") or "application/json").split(";")[0].strip()
    if ctype != "application/json":
        return None
    try:
        doc = _loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict) or len(doc) != 1:
        return None
    if "dataframe_split" in doc:
        split = doc["dataframe_split"]
        if not isinstance(split, dict) or set(split) - {"columns", "data", "index"}:
            return None
        cols, data = split.get("columns"), split.get("data")
        if not isinstance(cols, list) or sorted(cols) != sorted(columns) or not isinstance(data, list):
            return None
        if cols != columns:
            order = [cols.index(c) for c in columns]
            data = [[r[i] for i in order] if isinstance(r, list) and len(r) == len(cols) else None
                    for r in data]
        rows = data
    elif "dataframe_records" in doc:
        recs = doc["dataframe_records"]
        if not isinstance(recs, list):
            return None
        rows = [[r.get(c) for c in columns] if isinstance(r, dict) and len(r) == len(columns) else None
                for r in recs]
    else:
        return None
    for r in rows:
        if not isinstance(r, list) or len(r) != len(columns):
            return None
        for v in r:
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                return None
    return rows or None


def _slice(out: Any, start: int, stop: int) -> Any:
    if hasattr(out, "iloc"):
        return out.iloc[start:stop]
    return out[start:stop]
