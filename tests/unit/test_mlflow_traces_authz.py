"""MLflow Tracing's calls through the MLflow proxy (api/mlflow_traces.py): which calls are open
to non-admins and at what level, a trace's experiment looked up once, bad messages a 400 naming
the field, other trace calls left to the admins-only rule."""

from __future__ import annotations

import pytest

from ladle.api.mlflow_traces import TraceAuthz, rule
from ladle.schemas.errors import ApiError


@pytest.mark.parametrize("method,path,expected", [
    ("GET", "/api/3.0/mlflow/traces/get", ("query", "CAN_READ", None)),
    ("GET", "/ajax-api/3.0/mlflow/traces/tr-abc", ("path", "CAN_READ", "tr-abc")),
    ("GET", "/api/2.0/mlflow/traces/tr-abc/info", ("path", "CAN_READ", "tr-abc")),
    ("GET", "/api/3.0/mlflow/traces/batchGet", ("ids", "CAN_READ", None)),
    ("POST", "/api/3.0/mlflow/traces/batchGetInfos", ("ids", "CAN_READ", None)),
    ("POST", "/api/3.0/mlflow/traces/search", ("locations", "CAN_READ", None)),
    ("GET", "/api/2.0/mlflow/traces", ("experiments", "CAN_READ", None)),
    ("PATCH", "/api/3.0/mlflow/traces/tr-abc/tags", ("path", "CAN_EDIT", "tr-abc")),
    ("POST", "/api/3.0/mlflow/traces/delete-traces", None),      # admins only
    ("POST", "/api/3.0/mlflow/traces", None),
    ("GET", "/api/2.0/mlflow/experiments/get", None),
])
def test_rules(method, path, expected):
    assert rule(method, path) == expected


class Acl:
    def __init__(self, held: dict[str, str]) -> None:
        self.held = held

    def require(self, p, object_type, object_id, level):
        order = ["CAN_READ", "CAN_EDIT", "CAN_MANAGE"]
        have = self.held.get(object_id)
        if have is None or order.index(have) < order.index(level):
            raise ApiError("PERMISSION_DENIED", f"needs {level} on experiment {object_id}", 403)


class Lookups:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def get(self, path, params, missing_on_5xx=False):
        self.asked.append(path)
        tid = path.rsplit("/", 1)[1]
        exp = {"tr-mine": "1", "tr-other": "2"}.get(tid)
        return {"trace": {"trace_info": {"trace_location": {"mlflow_experiment": {"experiment_id": exp}}}}} \
            if exp else None


async def _code(authz, *args):
    with pytest.raises(ApiError) as e:
        await authz.check(None, *args)
    return e.value.error_code, e.value.message


async def test_a_trace_is_its_experiments_and_looked_up_once():
    lookups = Lookups()
    authz = TraceAuthz(Acl({"1": "CAN_READ"}), lookups)
    await authz.check(None, "query", "CAN_READ", None, {"trace_id": "tr-mine"})
    await authz.check(None, "path", "CAN_READ", "tr-mine", {})
    assert lookups.asked == ["/api/3.0/mlflow/traces/tr-mine"]
    assert (await _code(authz, "path", "CAN_EDIT", "tr-mine", {}))[0] == "PERMISSION_DENIED"
    assert (await _code(authz, "ids", "CAN_READ", None, {"trace_ids": ["tr-mine", "tr-other"]}))[0] == "PERMISSION_DENIED"
    assert (await _code(authz, "query", "CAN_READ", None, {"trace_id": "tr-none"}))[0] == "RESOURCE_DOES_NOT_EXIST"


async def test_searches_need_every_experiment_and_bad_messages_name_the_field():
    authz = TraceAuthz(Acl({"1": "CAN_READ"}), Lookups())
    await authz.check(None, "locations", "CAN_READ", None,
                      {"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "1"}}]})
    await authz.check(None, "experiments", "CAN_READ", None, {"experiment_ids": ["1"]})
    both = {"locations": [{"mlflow_experiment": {"experiment_id": e}} for e in ("1", "2")]}
    assert (await _code(authz, "locations", "CAN_READ", None, both))[0] == "PERMISSION_DENIED"
    for what, msg, field in (("locations", {}, "locations"), ("locations", {"locations": [{"uc": 1}]}, "locations"),
                             ("ids", {"trace_ids": []}, "trace_ids"), ("experiments", {}, "experiment_ids"),
                             ("query", {"trace_id": "../x"}, "trace_id"), ("query", {}, "trace_id")):
        code, message = await _code(authz, what, "CAN_READ", None, msg)
        assert code == "INVALID_PARAMETER_VALUE" and field in message, (what, msg, message)
