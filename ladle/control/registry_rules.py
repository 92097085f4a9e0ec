"""Which permission each MLflow REST call needs, as one table (after MLflow's own
`mlflow.server.auth.BEFORE_REQUEST_HANDLERS`): pure data and pure functions, no I/O.

A rule names what the call acts on and the level it needs there:

- `target`: `experiment` (an experiment id), `run` (a run id: its experiment), `runs` (a list
  of run ids), `logged_model` (a logged model id: its experiment), `model` (a registered
  model name), `artifact` (a `mlflow-artifacts` path: `<experiment_id>/...`), `version_source`
  (create-model-version: edit on the model, read on the source), `create` (anyone may),
  `search` (anyone may; results filtered), `open` (anyone may, nothing to protect), `admin`.
- `key`: where the id is: a field of the request message (query for GET, JSON body else),
  `path` (the `<...>` part of the route), or a dotted path into the body.
- `need`: `read`, `edit`, `manage` or `stage` (a stage transition: decided by the stages).
- `after`: what the proxy does with the answer (own the created object, filter a search...).

A call on MLflow's paths that is not in the table is for admins only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

EXPERIMENT_LEVELS = ("CAN_READ", "CAN_EDIT", "CAN_MANAGE")
MODEL_LEVELS = ("CAN_READ", "CAN_EDIT", "CAN_MANAGE_STAGING_VERSIONS",
                "CAN_MANAGE_PRODUCTION_VERSIONS", "CAN_MANAGE")
LEVELS = {"experiments": EXPERIMENT_LEVELS, "registered-models": MODEL_LEVELS}
OWNER = "IS_OWNER"          # the creator's row: CAN_MANAGE that a PUT does not take away
NEED_LEVEL = {"read": "CAN_READ", "edit": "CAN_EDIT", "manage": "CAN_MANAGE"}


def rank(object_type: str, level: str) -> int:
    """Higher grants more; every level implies those below it (CAN_MANAGE_* imply edit)."""
    if level == OWNER:
        return len(LEVELS[object_type]) - 1
    return LEVELS[object_type].index(level)


def allows(object_type: str, held: str | None, wanted: str) -> bool:
    return held is not None and rank(object_type, held) >= rank(object_type, wanted)


@dataclass(frozen=True)
class Rule:
    target: str
    key: str | None = None
    need: str = "read"
    after: str | None = None
    alt_key: str | None = None      # MLflow's older spelling of the same field (run_uuid)


R, E, M = "read", "edit", "manage"
_RUN = dict(key="run_id", alt_key="run_uuid")

# (method, path under /api/2.0/mlflow/ or /api/3.0/mlflow/) -> Rule
TABLE: dict[tuple[str, str], Rule] = {
    # experiments
    ("POST", "experiments/create"): Rule("create", after="own-experiment"),
    ("GET", "experiments/get"): Rule("experiment", "experiment_id", R),
    ("GET", "experiments/get-by-name"): Rule("open", after="check-experiment"),
    ("POST", "experiments/delete"): Rule("experiment", "experiment_id", M),
    ("POST", "experiments/restore"): Rule("experiment", "experiment_id", M),
    ("POST", "experiments/update"): Rule("experiment", "experiment_id", E),
    ("POST", "experiments/set-experiment-tag"): Rule("experiment", "experiment_id", E),
    ("POST", "experiments/delete-experiment-tag"): Rule("experiment", "experiment_id", E),
    ("GET", "experiments/search"): Rule("search", after="filter-experiments"),
    ("POST", "experiments/search"): Rule("search", after="filter-experiments"),
    # runs (a run's permission is its experiment's)
    ("POST", "runs/create"): Rule("experiment", "experiment_id", E),
    ("GET", "runs/get"): Rule("run", need=R, **_RUN),
    ("POST", "runs/delete"): Rule("run", need=M, **_RUN),
    ("POST", "runs/restore"): Rule("run", need=M, **_RUN),
    ("POST", "runs/update"): Rule("run", need=E, **_RUN),
    ("POST", "runs/log-batch"): Rule("run", need=E, **_RUN),
    ("POST", "runs/log-metric"): Rule("run", need=E, **_RUN),
    ("POST", "runs/log-parameter"): Rule("run", need=E, **_RUN),
    ("POST", "runs/log-model"): Rule("run", need=E, **_RUN),
    ("POST", "runs/log-inputs"): Rule("run", need=E, **_RUN),
    ("POST", "runs/outputs"): Rule("run", need=E, **_RUN),
    ("POST", "runs/set-tag"): Rule("run", need=E, **_RUN),
    ("POST", "runs/delete-tag"): Rule("run", need=E, **_RUN),
    ("POST", "runs/search"): Rule("search", after="filter-runs"),
    ("GET", "metrics/get-history"): Rule("run", need=R, **_RUN),
    ("GET", "metrics/get-history-bulk-interval"): Rule("runs", "run_ids", R),
    ("GET", "artifacts/list"): Rule("run", need=R, **_RUN),
    ("POST", "artifacts/presigned-download-url"): Rule("run", need=R, **_RUN),
    # logged models (MLflow 3): their experiment's permission
    ("POST", "logged-models"): Rule("experiment", "experiment_id", E),
    ("GET", "logged-models/<id>"): Rule("logged_model", "path", R),
    ("GET", "logged-models/<id>/artifacts/directories"): Rule("logged_model", "path", R),
    ("PATCH", "logged-models/<id>"): Rule("logged_model", "path", E),
    ("POST", "logged-models/<id>/params"): Rule("logged_model", "path", E),
    ("PATCH", "logged-models/<id>/tags"): Rule("logged_model", "path", E),
    ("DELETE", "logged-models/<id>/tags/<key>"): Rule("logged_model", "path", E),
    ("DELETE", "logged-models/<id>"): Rule("logged_model", "path", M),
    ("POST", "logged-models/search"): Rule("search", after="filter-logged-models"),
    # registered models
    ("POST", "registered-models/create"): Rule("create", after="own-model"),
    ("GET", "registered-models/get"): Rule("model", "name", R),
    ("GET", "registered-models/get-latest-versions"): Rule("model", "name", R),
    ("POST", "registered-models/get-latest-versions"): Rule("model", "name", R),
    ("PATCH", "registered-models/update"): Rule("model", "name", E),
    ("POST", "registered-models/set-tag"): Rule("model", "name", E),
    ("DELETE", "registered-models/delete-tag"): Rule("model", "name", E),
    ("POST", "registered-models/rename"): Rule("model", "name", M, after="rename-model"),
    ("DELETE", "registered-models/delete"): Rule("model", "name", M, after="forget-model"),
    ("GET", "registered-models/search"): Rule("search", after="filter-models"),
    ("GET", "registered-models/alias"): Rule("model", "name", R),
    ("POST", "registered-models/alias"): Rule("model", "name", E),
    ("DELETE", "registered-models/alias"): Rule("model", "name", E),
    # model versions (a version's permission is its model's)
    ("POST", "model-versions/create"): Rule("version_source", "name", E),
    ("GET", "model-versions/get"): Rule("model", "name", R),
    ("GET", "model-versions/get-download-uri"): Rule("model", "name", R),
    ("PATCH", "model-versions/update"): Rule("model", "name", E),
    ("POST", "model-versions/set-tag"): Rule("model", "name", E),
    ("DELETE", "model-versions/delete-tag"): Rule("model", "name", E),
    ("DELETE", "model-versions/delete"): Rule("model", "name", M),
    ("POST", "model-versions/transition-stage"): Rule("model", "name", "stage"),
    ("GET", "model-versions/search"): Rule("search", after="filter-versions"),
    # MLflow 3 clients ask what the server supports
    ("GET", "server-info"): Rule("open"),
}

# Artifact routes outside /api/2.0/mlflow/: (method, route) -> Rule
ARTIFACTS: dict[tuple[str, str], Rule] = {
    ("GET", "mlflow-artifacts/artifacts"): Rule("artifact", "path", R),     # list (?path=)
    ("GET", "mlflow-artifacts/artifacts/<path>"): Rule("artifact", "path", R),
    ("PUT", "mlflow-artifacts/artifacts/<path>"): Rule("artifact", "path", E),
    ("DELETE", "mlflow-artifacts/artifacts/<path>"): Rule("artifact", "path", M),
    ("POST", "mlflow-artifacts/mpu/create/<path>"): Rule("artifact", "path", E),
    ("POST", "mlflow-artifacts/mpu/complete/<path>"): Rule("artifact", "path", E),
    ("POST", "mlflow-artifacts/mpu/abort/<path>"): Rule("artifact", "path", E),
    ("GET", "get-artifact"): Rule("run", need=R, **_RUN),
    ("GET", "model-versions/get-artifact"): Rule("model", "name", R),
}

ADMIN = Rule("admin")
PROMPT_SOURCES = ("prompt-template", "dummy-source")   # MLflow's placeholder sources of prompt versions
_MLFLOW = re.compile(r"^/(?:api|ajax-api)/[23]\.0/mlflow/(.+)$")
_ARTIFACTS = re.compile(r"^(?:/api/2\.0|/ajax-api/2\.0)?/(mlflow-artifacts/(?:artifacts|mpu/\w+))(?:/(.*))?$")
_PLAIN = re.compile(r"^(?:/ajax-api/2\.0/mlflow)?/((?:model-versions/)?get-artifact)$")


def match(method: str, path: str) -> tuple[Rule, str | None]:
    """The rule for a request and the `<...>` part of its route (a logged model id or an
    artifact path), or ADMIN for calls the table does not know."""
    m = _ARTIFACTS.match(path)
    if m:
        route, rest = m.group(1), m.group(2)
        if rest is not None:
            return ARTIFACTS.get((method, route + "/<path>"), ADMIN), rest
        return ARTIFACTS.get((method, route), ADMIN), None
    m = _PLAIN.match(path)
    if m:
        return ARTIFACTS.get((method, m.group(1)), ADMIN), None
    m = _MLFLOW.match(path)
    if not m:
        return ADMIN, None
    sub = m.group(1).rstrip("/")
    rule = TABLE.get((method, sub))
    if rule is not None:
        return rule, None
    parts = sub.split("/")
    if len(parts) >= 2 and parts[0] == "logged-models" and parts[1]:
        rest = parts[2:]
        if len(rest) == 2 and rest[0] == "tags":
            rest = ["tags", "<key>"]
        rule = TABLE.get((method, "/".join(["logged-models", "<id>", *rest])))
        if rule is not None:
            return rule, parts[1]
    return ADMIN, None


def experiment_of_artifact_path(path: str) -> str | None:
    """`<experiment_id>/<run_id>/artifacts/...` or `<experiment_id>/models/<id>/...` (the
    embedded server's layout under `mlflow-artifacts:/`): the experiment id, or None when the
    path is not of that shape or could step outside it (`..`, `.`, empty parts)."""
    parts = path.split("/")
    if not parts or not parts[0].isdigit():
        return None
    if any(p in ("", ".", "..") or "\\" in p for p in parts[1:]):
        return None
    return parts[0]


def stage_level(target: str | None, current: str | None) -> str:
    """The model level a stage transition needs: moving into or out of Production needs
    CAN_MANAGE_PRODUCTION_VERSIONS; any other transition CAN_MANAGE_STAGING_VERSIONS."""
    stages = {(s or "").lower() for s in (target, current)}
    if "production" in stages:
        return "CAN_MANAGE_PRODUCTION_VERSIONS"
    return "CAN_MANAGE_STAGING_VERSIONS"


def source_target(source: str | None) -> tuple[str, str] | None:
    """What a model version's `source` points at, to check the caller may read it:
    ("artifact", <experiment_id>), ("run", <run_id>), ("logged_model", <model_id>),
    ("model", <registered model name>) for `models:/<name>/<version>`, ("none", "") for a
    prompt version (MLflow's placeholder source); None
    when it is anything else (a local path, another store: admins only)."""
    if not source:
        return None
    if source in PROMPT_SOURCES:    # a prompt version: its text is in its tags, no files
        return "none", ""
    for prefix in ("mlflow-artifacts:///", "mlflow-artifacts:/"):
        if source.startswith(prefix):
            exp = experiment_of_artifact_path(source[len(prefix):].lstrip("/") or "")
            return ("artifact", exp) if exp else None
    m = re.match(r"^runs:/([0-9a-f]{32})(?:/.*)?$", source)
    if m:
        return "run", m.group(1)
    m = re.match(r"^models:/(m-[0-9a-f]{32})/?$", source)
    if m:
        return "logged_model", m.group(1)
    m = re.match(r"^models:/([^/@]+)/(\d+)/?$", source)
    if m:
        return "model", m.group(1)
    return None
