"""Everything ladle takes from MLflow beyond its documented API, in one module.

MLflow's serving and server internals (private attributes of a loaded pyfunc model, the
scoring server's helpers, the tracking server's app and environment) are no stable API: a
minor release may rename or change them. ladle's uses of them live here, each behind one small
function whose behaviour a contract test asserts on real saved models
(tests/integration/test_mlflow_adapter_contract.py); the suite runs those tests against the
oldest and the newest MLflow that pyproject.toml allows (tests/integration/test_mlflow_versions.py).
Everything else in ladle uses MLflow's public API (`mlflow.pyfunc.load_model`,
`mlflow.artifacts`, `MlflowException`, the REST API).

MLflow is imported lazily, inside each function: importing this module costs nothing.
"""

from __future__ import annotations

import os
from io import StringIO
from typing import Any, Callable

# What a pre-warmed replica imports before it knows its model (the MLflow part of it).
PREIMPORT = ("mlflow.pyfunc", "mlflow.pyfunc.scoring_server", "mlflow.sklearn")

_MISSING = object()


def supports_streaming(model: Any) -> bool:
    """Whether a loaded pyfunc model answers `predict_stream` (a ChatModel, a ResponsesAgent,
    a PythonModel that defines it). MLflow keeps this in a private attribute of the loaded
    model; the saved flavor's `streamable` flag is the fallback should that attribute go."""
    fn = getattr(model, "_predict_stream_fn", _MISSING)
    if fn is not _MISSING:
        return fn is not None
    conf = (getattr(model.metadata, "flavors", None) or {}).get("python_function") or {}
    return bool(conf.get("streamable"))


def score(model: Any, input_schema: Any, body: bytes, content_type: str) -> tuple[int, str, bytes]:
    """One request scored by MLflow's scoring server (`mlflow models serve`'s
    `invocations()`): (status, mimetype, body). Raises MlflowException for what the model or
    the input schema refuses."""
    from mlflow.pyfunc import scoring_server

    r = scoring_server.invocations(body, content_type, model, input_schema)
    out = r.response.encode() if isinstance(r.response, str) else r.response
    return r.status, r.mimetype, out


def parse_request(model: Any, input_schema: Any, payload: str) -> tuple[Any, dict | None]:
    """A JSON request body parsed as the scoring server parses it before `predict`:
    (model input, params). Raises MlflowException for a body the input schema refuses."""
    from mlflow.pyfunc import scoring_server

    parsed = scoring_server._parse_json_data(payload, model.metadata, input_schema)
    return parsed.data, parsed.params


def predictions_json(predictions: Any) -> bytes:
    """Predictions as the scoring server writes them: `{"predictions": ...}`."""
    from mlflow.pyfunc.scoring_server import predictions_to_json

    buf = StringIO()
    predictions_to_json(predictions, buf)
    return buf.getvalue().encode()


def sklearn_predict(model: Any) -> Callable[[Any], Any] | None:
    """The scikit-learn flavor's own predict function (it honours the model's
    `pyfunc_predict_fn`, e.g. predict_proba), without pyfunc's input-schema enforcement;
    None when the model is not of the scikit-learn flavor."""
    impl = getattr(model, "_model_impl", None)
    if impl is None or type(impl).__module__ != "mlflow.sklearn":
        return None
    conf = (getattr(model.metadata, "flavors", None) or {}).get("python_function") or {}
    return getattr(impl, conf.get("predict_fn") or "predict", None)


def drop_input_schema(model: Any) -> None:
    """Stop a loaded model from checking requests against its logged input schema (its
    output schema and params schema stay). The loaded model reads its signature at each
    predict, so replacing it after loading takes effect."""
    from mlflow.models.signature import ModelSignature

    sig = model.metadata.signature
    if sig is not None:
        model.metadata.signature = ModelSignature(inputs=None, outputs=sig.outputs, params=sig.params)


def _server_env_names() -> tuple[str, str, str, str, str]:
    try:
        from mlflow.server.constants import (
            ARTIFACT_ROOT_ENV_VAR, ARTIFACTS_DESTINATION_ENV_VAR, BACKEND_STORE_URI_ENV_VAR,
            REGISTRY_STORE_URI_ENV_VAR, SERVE_ARTIFACTS_ENV_VAR,
        )
    except ImportError:  # MLflow before 3.8 defines them in mlflow.server itself
        from mlflow.server import (  # type: ignore[no-redef]
            ARTIFACT_ROOT_ENV_VAR, ARTIFACTS_DESTINATION_ENV_VAR, BACKEND_STORE_URI_ENV_VAR,
            REGISTRY_STORE_URI_ENV_VAR, SERVE_ARTIFACTS_ENV_VAR,
        )
    return (BACKEND_STORE_URI_ENV_VAR, REGISTRY_STORE_URI_ENV_VAR, ARTIFACT_ROOT_ENV_VAR,
            SERVE_ARTIFACTS_ENV_VAR, ARTIFACTS_DESTINATION_ENV_VAR)


def tracking_server_env(backend_store_uri: str, artifacts_destination: str) -> dict[str, str]:
    """The environment that `mlflow server --backend-store-uri B --serve-artifacts
    --artifacts-destination A` gives its app (MLflow's server reads its settings from the
    environment), less the features ladle does not use (workspaces, job execution)."""
    from mlflow.utils.server_cli_utils import resolve_default_artifact_root

    backend, registry, root, serve, dest = _server_env_names()
    return {
        backend: backend_store_uri,
        registry: backend_store_uri,
        root: resolve_default_artifact_root(True, None, backend_store_uri),
        serve: "true",
        dest: artifacts_destination,
        "MLFLOW_ENABLE_WORKSPACES": "false",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "_MLFLOW_SGI_NAME": "uvicorn",
        "_MLFLOW_IN_JOB_EXECUTOR": "false",
    }


def tracking_server_app(backend_store_uri: str, artifacts_destination: str) -> Any:
    """MLflow's tracking server as an ASGI app, set up as `mlflow server` sets it up (in this
    process: its settings go into this process's environment, which is the tracking
    server's own)."""
    env = tracking_server_env(backend_store_uri, artifacts_destination)
    os.environ.update(env)
    from mlflow.server.handlers import initialize_backend_stores

    backend, registry, root = _server_env_names()[:3]
    initialize_backend_stores(env[backend], env[registry], env[root])
    from mlflow.server.fastapi_app import app

    return app


def tracing_keep_in_memory(exporter: Any) -> bool:
    """Set MLflow Tracing's tracer provider, once per process, to one whose MLflow span
    processor hands finished spans to `exporter` (an OpenTelemetry SpanExporter) instead of a
    tracking store. Does nothing when MLflow has set up tracing already; False when MLflow
    Tracing or the OpenTelemetry SDK is not installed."""
    try:
        from mlflow.tracing import provider as mp
        from mlflow.tracing.processor.mlflow_v3 import MlflowV3SpanProcessor
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:
        return False

    def init() -> None:
        tp = TracerProvider(sampler=mp._get_trace_sampler())
        tp.add_span_processor(MlflowV3SpanProcessor(span_exporter=exporter, export_metrics=False))
        mp.provider.set(tp)

    mp.provider.once.do_once(init)
    return True


def tracer_provider() -> Any:
    """MLflow Tracing's tracer provider, set up as MLflow sets it up on first use (a no-op
    provider, without `add_span_processor`, while tracing is disabled); None without MLflow
    Tracing."""
    try:
        from mlflow.tracing import provider as mp
    except ImportError:
        return None
    mp.provider.once.do_once(mp._initialize_tracer_provider)
    return mp.provider.get()


def drop_finished_trace(trace_id: int) -> None:
    """Take a finished trace out of MLflow's in-memory trace manager, as MLflow's own
    exporters do once they have sent it."""
    from mlflow.tracing.trace_manager import InMemoryTraceManager

    InMemoryTraceManager.get_instance().pop_trace(trace_id)


def tracing_context(traceparent: str) -> Any:
    """A context manager under which the spans a model opens (`@mlflow.trace`,
    `mlflow.start_span`) are children of the W3C `traceparent`'s span."""
    from mlflow.tracing.distributed import set_tracing_context_from_http_request_headers

    return set_tracing_context_from_http_request_headers({"traceparent": traceparent})
