"""The registry permission table (control/registry_rules.py) and the grants it is checked
against (control/registry_acl.py, on a SQLite store in a temp dir)."""

from __future__ import annotations

import pytest

from ladle.control.registry_acl import RegistryAcl
from ladle.control.registry_rules import (
    ADMIN, allows, experiment_of_artifact_path, match, source_target, stage_level,
)
from ladle.control.store import Store
from ladle.schemas.errors import ApiError
from ladle.schemas.principal import Principal

RUN = "0123456789abcdef0123456789abcdef"
LM = "m-0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("method,path,target,need,part", [
    ("GET", "/api/2.0/mlflow/experiments/get", "experiment", "read", None),
    ("POST", "/api/2.0/mlflow/experiments/delete", "experiment", "manage", None),
    ("POST", "/ajax-api/2.0/mlflow/experiments/set-experiment-tag", "experiment", "edit", None),
    ("POST", "/api/2.0/mlflow/runs/create", "experiment", "edit", None),
    ("POST", "/api/2.0/mlflow/runs/log-batch", "run", "edit", None),
    ("POST", "/api/2.0/mlflow/runs/delete", "run", "manage", None),
    ("GET", "/api/2.0/mlflow/metrics/get-history", "run", "read", None),
    ("GET", f"/api/2.0/mlflow/logged-models/{LM}", "logged_model", "read", LM),
    ("PATCH", f"/api/2.0/mlflow/logged-models/{LM}", "logged_model", "edit", LM),
    ("DELETE", f"/api/2.0/mlflow/logged-models/{LM}/tags/some-key", "logged_model", "edit", LM),
    ("DELETE", f"/api/2.0/mlflow/logged-models/{LM}", "logged_model", "manage", LM),
    ("GET", "/api/2.0/mlflow/registered-models/get", "model", "read", None),
    ("PATCH", "/api/2.0/mlflow/registered-models/update", "model", "edit", None),
    ("DELETE", "/api/2.0/mlflow/registered-models/delete", "model", "manage", None),
    ("POST", "/api/2.0/mlflow/model-versions/create", "version_source", "edit", None),
    ("POST", "/api/2.0/mlflow/model-versions/transition-stage", "model", "stage", None),
    ("GET", "/api/2.0/mlflow-artifacts/artifacts/1/x/artifacts/a.txt", "artifact", "read", "1/x/artifacts/a.txt"),
    ("PUT", "/api/2.0/mlflow-artifacts/artifacts/1/x/artifacts/a.txt", "artifact", "edit", "1/x/artifacts/a.txt"),
    ("DELETE", "/api/2.0/mlflow-artifacts/artifacts/1/x", "artifact", "manage", "1/x"),
    ("GET", "/api/2.0/mlflow-artifacts/artifacts", "artifact", "read", None),
    ("GET", "/get-artifact", "run", "read", None),
    ("GET", "/model-versions/get-artifact", "model", "read", None),
])
def test_each_call_needs_its_level_on_its_object(method, path, target, need, part):
    rule, got_part = match(method, path)
    assert (rule.target, rule.need, got_part) == (target, need, part)


@pytest.mark.parametrize("method,path", [
    ("POST", "/api/2.0/mlflow/webhooks"),                   # not in the table: admins only
    ("POST", "/api/3.0/mlflow/gateway/secrets/create"),
    ("GET", "/api/2.0/mlflow/experiments/get-anything"),
    ("GET", "/api/2.0/mlflow/registered-models/delete"),    # known path, wrong method
    ("GET", "/api/2.0/mlflow-artifacts/presigned/1/x"),
    ("GET", "/ajax-api/2.0/mlflow/gateway-proxy"),
])
def test_calls_the_table_does_not_know_are_for_admins(method, path):
    assert match(method, path)[0] is ADMIN


def test_searches_and_creations_say_what_happens_to_the_answer():
    assert match("POST", "/api/2.0/mlflow/experiments/create")[0].after == "own-experiment"
    assert match("POST", "/api/2.0/mlflow/registered-models/create")[0].after == "own-model"
    assert match("GET", "/api/2.0/mlflow/registered-models/search")[0].after == "filter-models"
    assert match("GET", "/api/2.0/mlflow/model-versions/search")[0].after == "filter-versions"
    assert match("POST", "/api/2.0/mlflow/runs/search")[0].after == "filter-runs"
    assert match("POST", "/api/2.0/mlflow/registered-models/rename")[0].after == "rename-model"


@pytest.mark.parametrize("path,exp", [
    (f"3/{RUN}/artifacts/model/MLmodel", "3"),
    (f"3/models/{LM}/artifacts", "3"),
    ("3", "3"),
    (f"3/../4/{RUN}/artifacts", None),
    (f"3/./{RUN}", None),
    ("3//x", None),
    ("../3/x", None),
    ("abc/x", None),
    ("", None),
])
def test_an_artifact_path_belongs_to_the_experiment_it_starts_with(path, exp):
    assert experiment_of_artifact_path(path) == exp


def test_levels_imply_the_ones_below():
    assert allows("registered-models", "CAN_MANAGE_PRODUCTION_VERSIONS", "CAN_MANAGE_STAGING_VERSIONS")
    assert allows("registered-models", "CAN_MANAGE_STAGING_VERSIONS", "CAN_EDIT")
    assert not allows("registered-models", "CAN_MANAGE_STAGING_VERSIONS", "CAN_MANAGE_PRODUCTION_VERSIONS")
    assert allows("experiments", "IS_OWNER", "CAN_MANAGE")
    assert not allows("experiments", "CAN_EDIT", "CAN_MANAGE")
    assert not allows("experiments", None, "CAN_READ")


def test_stage_transitions():
    assert stage_level("Staging", "None") == "CAN_MANAGE_STAGING_VERSIONS"
    assert stage_level("Archived", "Staging") == "CAN_MANAGE_STAGING_VERSIONS"
    assert stage_level("Production", "Staging") == "CAN_MANAGE_PRODUCTION_VERSIONS"
    assert stage_level("Archived", "Production") == "CAN_MANAGE_PRODUCTION_VERSIONS"


def test_version_sources_point_at_something_checkable():
    assert source_target(f"mlflow-artifacts:/2/{RUN}/artifacts/model") == ("artifact", "2")
    assert source_target(f"runs:/{RUN}/model") == ("run", RUN)
    assert source_target(f"models:/{LM}") == ("logged_model", LM)
    assert source_target("models:/main.default.iris/3") == ("model", "main.default.iris")
    assert source_target("prompt-template") == source_target("dummy-source") == ("none", "")  # prompts: no files
    for other in ("/etc", "file:///srv/ladle/admin-token", "s3://bucket/x", "mlflow-artifacts:/../x", None):
        assert source_target(other) is None


def _acl(tmp_path) -> RegistryAcl:
    return RegistryAcl(Store(f"sqlite:///{tmp_path / 'ladle.db'}"))


ALICE = Principal("alice", groups=frozenset({"users"}))
BOB = Principal("bob", groups=frozenset({"users", "analysts"}))
ADMIN_P = Principal("root", is_admin=True, groups=frozenset({"users", "admins"}))


async def test_owner_grants_and_groups(tmp_path):
    acl = _acl(tmp_path)
    await acl.own("registered-models", "m", ALICE)
    assert acl.level(ALICE, "registered-models", "m") == "CAN_MANAGE"
    assert acl.level(BOB, "registered-models", "m") is None
    assert acl.level(ADMIN_P, "registered-models", "m") == "CAN_MANAGE"
    with pytest.raises(ApiError) as e:
        acl.require(BOB, "registered-models", "m", "CAN_READ")
    assert e.value.error_code == "PERMISSION_DENIED" and "'m'" in e.value.message

    await acl.update("registered-models", "m", [("group_name", "analysts", "CAN_READ")])
    assert acl.level(BOB, "registered-models", "m") == "CAN_READ"
    await acl.set("registered-models", "m", [("user_name", "bob", "CAN_EDIT")])   # replaces the group grant
    assert acl.level(BOB, "registered-models", "m") == "CAN_EDIT"
    assert acl.level(ALICE, "registered-models", "m") == "CAN_MANAGE"              # a PUT keeps the owner
    await acl.set("registered-models", "m", [("user_name", "alice", "CAN_READ")])
    assert acl.level(ALICE, "registered-models", "m") == "CAN_MANAGE"
    assert acl.readable(BOB, "registered-models") == set()

    await acl.rename("registered-models", "m", "m2")
    assert acl.level(ALICE, "registered-models", "m2") == "CAN_MANAGE"
    assert acl.level(ALICE, "registered-models", "m") is None
    assert _acl(tmp_path).level(ALICE, "registered-models", "m2") == "CAN_MANAGE"   # stored, not just cached
    await acl.forget("registered-models", "m2")
    assert _acl(tmp_path).level(ALICE, "registered-models", "m2") is None


async def test_unowned_objects_are_for_admins_but_the_default_experiment_is_shared(tmp_path):
    acl = _acl(tmp_path)
    assert acl.level(ALICE, "experiments", "7") is None
    assert acl.level(ADMIN_P, "experiments", "7") == "CAN_MANAGE"
    assert acl.level(ALICE, "experiments", "0") == "CAN_EDIT"
    assert acl.readable(BOB, "experiments") == {"0"}
    assert acl.readable(ADMIN_P, "experiments") is None
    rendered = acl.render("experiments", "0")
    assert rendered["object_id"] == "/experiments/0"
    assert {"group_name": "users", "display_name": "users",
            "all_permissions": [{"permission_level": "CAN_EDIT", "inherited": False}]} in rendered["access_control_list"]


async def test_another_servers_grant_is_seen_after_a_reload(tmp_path):
    here, there = _acl(tmp_path), _acl(tmp_path)            # two servers, one database
    await there.own("experiments", "3", ALICE)
    await there.update("experiments", "3", [("user_name", "bob", "CAN_EDIT")])
    assert here.level(BOB, "experiments", "3") is None       # not yet reloaded
    here.reload()                                             # what StateSync calls
    assert here.level(BOB, "experiments", "3") == "CAN_EDIT"
    assert here.level(ALICE, "experiments", "3") == "CAN_MANAGE"
