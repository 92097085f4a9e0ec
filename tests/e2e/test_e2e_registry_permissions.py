"""Registry permissions, as two ordinary users see them: A works with the real `mlflow`
client, B tries to read, change and delete A's experiment and model with the same client
and with `databricks-sdk`, and can do exactly what A's grants (made with the SDK's
permissions API) allow."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
from typing import Iterator

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import PermissionDenied
from databricks.sdk.service.iam import AccessControlRequest, PermissionLevel
from databricks.sdk.service.serving import EndpointCoreConfigInput, ServedEntityInput

from ladle.testing.registry import tracking

from e2e_support import COLUMNS, SERVER_ARGV, client

A, B = "reg-alice", "reg-bob"
pytestmark = pytest.mark.filterwarnings("ignore:.*transition_model_version_stage.*:FutureWarning")


@pytest.fixture(scope="module")
def tokens(server) -> dict[str, str]:
    out = {}
    with client(server) as admin:
        for user in (A, B):
            r = admin.post("/api/2.0/token-management/on-behalf-of/tokens",
                           json={"user_name": user, "comment": "registry e2e"})
            assert r.status_code == 200, r.text
            out[user] = r.json()["token_value"]
    return out


def sdk(server, token: str) -> WorkspaceClient:
    return WorkspaceClient(config=Config(host=server.url, token=token, retry_timeout_seconds=30))


@contextlib.contextmanager
def mlflow_as(server, token: str) -> Iterator["object"]:
    from mlflow import MlflowClient

    with tracking(server.url, token):
        yield MlflowClient()


def denied(fn, *args, **kwargs) -> str:
    """Call `fn`; it must fail with PERMISSION_DENIED. Returns the message."""
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException) as e:
        fn(*args, **kwargs)
    assert e.value.error_code == "PERMISSION_DENIED", str(e.value)
    return str(e.value)


def grant(w: WorkspaceClient, object_type: str, object_id: str, user: str, level: str) -> None:
    got = w.permissions.set(request_object_type=object_type, request_object_id=object_id,
                            access_control_list=[AccessControlRequest(
                                user_name=user, permission_level=PermissionLevel(level))])
    levels = {a.user_name: a.all_permissions[0].permission_level.value for a in got.access_control_list
              if a.user_name}
    assert levels == {A: "CAN_MANAGE", user: level}    # the owner stays the owner


def test_experiment_is_private_until_granted_then_exactly_to_the_level(server, tokens, tmp_path):
    name = f"/Users/{A}/exp-{secrets.token_hex(4)}"
    with mlflow_as(server, tokens[A]) as a:
        exp = a.create_experiment(name)
        run = a.create_run(exp)
        run_id = run.info.run_id
        a.log_param(run_id, "alpha", "0.5")
        a.log_text(run_id, "A's notes", "notes.txt")
        assert a.get_experiment(exp).name == name

    with mlflow_as(server, tokens[B]) as b:
        assert "CAN_READ" in denied(b.get_experiment, exp) and exp in denied(b.get_experiment, exp)
        denied(b.get_experiment_by_name, name)
        denied(b.get_run, run_id)
        denied(b.download_artifacts, run_id, "notes.txt", str(tmp_path))
        denied(b.set_experiment_tag, exp, "k", "v")
        denied(b.log_param, run_id, "beta", "1")
        denied(b.delete_experiment, exp)
        assert name not in {e.name for e in b.search_experiments()}
        assert list(b.search_runs([exp])) == []

    wa, wb = sdk(server, tokens[A]), sdk(server, tokens[B])
    with pytest.raises(PermissionDenied):     # B cannot grant itself anything
        wb.permissions.update(request_object_type="experiments", request_object_id=exp,
                              access_control_list=[AccessControlRequest(
                                  user_name=B, permission_level=PermissionLevel.CAN_MANAGE)])
    levels = wa.permissions.get_permission_levels(request_object_type="experiments", request_object_id=exp)
    assert [lv.permission_level.value for lv in levels.permission_levels] == ["CAN_READ", "CAN_EDIT", "CAN_MANAGE"]

    grant(wa, "experiments", exp, B, "CAN_READ")
    with mlflow_as(server, tokens[B]) as b:
        assert b.get_experiment(exp).name == name
        assert b.get_run(run_id).data.params == {"alpha": "0.5"}
        assert (tmp_path / b.download_artifacts(run_id, "notes.txt", str(tmp_path))).read_text() == "A's notes"
        assert name in {e.name for e in b.search_experiments()}
        assert [r.info.run_id for r in b.search_runs([exp])] == [run_id]
        denied(b.set_experiment_tag, exp, "k", "v")
        denied(b.log_param, run_id, "beta", "1")
        denied(b.create_run, exp)

    grant(wa, "experiments", exp, B, "CAN_EDIT")
    with mlflow_as(server, tokens[B]) as b:
        b.set_experiment_tag(exp, "k", "v")
        b.log_param(run_id, "beta", "1")
        assert b.get_experiment(exp).tags["k"] == "v"
        denied(b.delete_run, run_id)
        denied(b.delete_experiment, exp)

    grant(wa, "experiments", exp, B, "CAN_EDIT")
    p = subprocess.run(   # the CLI, like `databricks permissions update`
        [*SERVER_ARGV, "permissions", "update", "experiments", exp, "--json",
         json.dumps({"access_control_list": [{"user_name": B, "permission_level": "CAN_MANAGE"}]})],
        env={**os.environ, "DATABRICKS_HOST": server.url, "DATABRICKS_TOKEN": tokens[A],
             "DATABRICKS_CONFIG_FILE": str(tmp_path / "none"), "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert {"user_name": B, "display_name": B, "all_permissions": [
        {"permission_level": "CAN_MANAGE", "inherited": False}]} in json.loads(p.stdout)["access_control_list"]
    with mlflow_as(server, tokens[B]) as b:
        b.delete_experiment(exp)
    with mlflow_as(server, tokens[A]) as a:
        assert a.get_experiment(exp).lifecycle_stage == "deleted"


def test_model_is_private_until_granted_and_endpoints_need_read(server, tokens, iris_data, admin):
    import mlflow
    import sklearn
    from sklearn.linear_model import LogisticRegression

    model = f"reg.alice.model_{secrets.token_hex(4)}"
    x, y = iris_data
    with mlflow_as(server, tokens[A]) as a:
        a_exp = a.create_experiment(f"/Users/{A}/models-{secrets.token_hex(4)}")
        with mlflow.start_run(experiment_id=a_exp):
            mlflow.sklearn.log_model(LogisticRegression(max_iter=300).fit(x, y), name="model",
                                     registered_model_name=model,
                                     pip_requirements=[f"mlflow=={mlflow.__version__}",
                                                       f"scikit-learn=={sklearn.__version__}"])
        assert a.get_model_version(model, "1").status == "READY"
        a_source = a.get_model_version(model, "1").source

    wa, wb = sdk(server, tokens[A]), sdk(server, tokens[B])
    endpoint = f"reg-bob-{secrets.token_hex(3)}"
    cfg = EndpointCoreConfigInput(name=endpoint, served_entities=[ServedEntityInput(
        entity_name=model, entity_version="1", workload_size="Small", scale_to_zero_enabled=True)])

    with mlflow_as(server, tokens[B]) as b:
        assert model in denied(b.get_registered_model, model)
        denied(b.get_model_version, model, "1")
        denied(b.get_model_version_download_uri, model, "1")
        denied(b.update_registered_model, model, description="B was here")
        denied(b.set_registered_model_alias, model, "champion", "1")
        denied(b.delete_registered_model, model)
        assert model not in {m.name for m in b.search_registered_models()}
        assert b.search_model_versions(f"name='{model}'") == []
        # B cannot register a version of its own pointing at A's files either
        b.create_registered_model(f"reg.bob.copycat_{secrets.token_hex(4)}")
        assert "CAN_READ" in denied(b.create_model_version, b.search_registered_models()[0].name, a_source)
    with pytest.raises(PermissionDenied) as e:
        wb.serving_endpoints.create(endpoint, config=cfg)
    assert model in str(e.value)
    with pytest.raises(PermissionDenied):
        wb.model_registry.get_model(model)
    assert admin.get(f"/api/2.0/serving-endpoints/{endpoint}").status_code == 404

    # admins see everything
    with mlflow_as(server, server.admin_token) as root:
        assert model in {m.name for m in root.search_registered_models()}

    grant(wa, "registered-models", model, B, "CAN_READ")
    with mlflow_as(server, tokens[B]) as b:
        assert b.get_registered_model(model).name == model
        assert b.get_model_version(model, "1").version == "1"
        assert model in {m.name for m in b.search_registered_models()}
        assert [v.version for v in b.search_model_versions(f"name='{model}'")] == ["1"]
        loaded = mlflow.pyfunc.load_model(f"models:/{model}/1")    # reads the artifacts
        assert list(loaded.predict(x.head(2)[COLUMNS])) == [0, 0]
        denied(b.update_registered_model, model, description="B was here")
    got = wb.model_registry.get_model(model).registered_model_databricks   # Databricks' id: the name here
    assert (got.id, got.name, got.permission_level.value) == (model, model, "CAN_READ")
    assert {a.user_name for a in wb.model_registry.get_permissions(got.id).access_control_list} >= {A, B}
    created = wb.serving_endpoints.create(endpoint, config=cfg)
    assert created.name == endpoint
    wb.serving_endpoints.delete(endpoint)

    grant(wa, "registered-models", model, B, "CAN_EDIT")
    with mlflow_as(server, tokens[B]) as b:
        b.update_registered_model(model, description="B was here")
        b.set_registered_model_alias(model, "champion", "1")
        assert b.get_model_version_by_alias(model, "champion").version == "1"
        denied(b.transition_model_version_stage, model, "1", "Staging")
        denied(b.delete_registered_model, model)

    grant(wa, "registered-models", model, B, "CAN_MANAGE_STAGING_VERSIONS")
    with mlflow_as(server, tokens[B]) as b:
        assert b.transition_model_version_stage(model, "1", "Staging").current_stage == "Staging"
        denied(b.transition_model_version_stage, model, "1", "Production")

    grant(wa, "registered-models", model, B, "CAN_MANAGE")
    with mlflow_as(server, tokens[B]) as b:
        b.delete_registered_model(model)
    with mlflow_as(server, tokens[A]) as a:
        assert model not in {m.name for m in a.search_registered_models()}


def test_bad_input_is_a_4xx_naming_the_field_and_changes_nothing(server, tokens):
    with mlflow_as(server, tokens[A]) as a:
        exp = a.create_experiment(f"/Users/{A}/bad-input-{secrets.token_hex(4)}")
    base = f"/api/2.0/permissions/experiments/{exp}"
    with client(server, tokens[A]) as ha, client(server, tokens[B]) as hb:
        before = ha.get(base).json()
        for body, field in [
            ({"access_control_list": [{"user_name": B, "permission_level": "CAN_MANAGE_STAGING_VERSIONS"}]},
             "access_control_list.0.permission_level"),      # a model level, not an experiment's
            ({"access_control_list": [{"user_name": B, "permission_level": "CAN_QUERY"}]},
             "access_control_list.0.permission_level"),
            ({"access_control_list": [{"user_name": B, "group_name": "g", "permission_level": "CAN_READ"}]},
             "access_control_list.0"),
            ({"access_control_list": "everyone"}, "access_control_list"),
        ]:
            for method in ("PUT", "PATCH"):
                r = ha.request(method, base, json=body)
                assert r.status_code == 400, r.text
                assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE" and field in r.json()["message"]
        r = ha.put(base, content=b"{not json")
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert ha.get(base).json() == before
        assert ha.get("/api/2.0/permissions/experiments/not-a-number").status_code == 400

        # MLflow calls that name nothing, or something that is not there
        r = hb.get("/api/2.0/mlflow/runs/get")
        assert r.status_code == 400 and "run_id" in r.json()["message"]
        r = hb.get("/api/2.0/mlflow/runs/get", params={"run_id": "0" * 32})
        assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        r = hb.post("/api/2.0/mlflow/experiments/create", content=b"[1, 2]")
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        r = hb.post("/api/2.0/mlflow/experiments/create", json={"name": "x", "artifact_location": "/etc"})
        assert r.status_code == 403 and "artifact_location" in r.json()["message"]
        r = hb.post("/api/2.0/mlflow/webhooks", json={"name": "w", "url": "http://127.0.0.1:1"})
        assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
    with client(server) as admin:
        r = admin.get("/api/2.0/permissions/registered-models/no.such.model")
        assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        assert "/etc" not in str(admin.post("/api/2.0/mlflow/experiments/search", json={}).json())


def test_the_default_experiment_is_shared_by_every_user(server, tokens):
    with mlflow_as(server, tokens[B]) as b:
        run = b.create_run("0")
        b.log_param(run.info.run_id, "shared", "yes")
        denied(b.delete_experiment, "0")
    with mlflow_as(server, tokens[A]) as a:
        assert a.get_run(run.info.run_id).data.params == {"shared": "yes"}


def test_prompts_are_registered_models_with_the_same_permissions(server, tokens):
    import mlflow

    name = f"reg_bob_prompt_{secrets.token_hex(4)}"
    with mlflow_as(server, tokens[B]):
        mlflow.genai.register_prompt(name=name, template="Hello {{name}}")
        assert mlflow.genai.load_prompt(f"prompts:/{name}/1").format(name="A") == "Hello A"
    with mlflow_as(server, tokens[A]) as a:
        assert name in denied(a.get_model_version, name, "1")
