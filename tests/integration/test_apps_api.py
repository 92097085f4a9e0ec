"""The apps API in-process, with a fake app runner behind the seam (no processes): names,
resources → grants and their revocation, deployments (app.yaml, valueFrom), the app's own
principal and its OAuth credentials, permissions, and bad input that changes nothing."""

from __future__ import annotations

import asyncio
import base64
import itertools
import time

import pytest
from starlette.testclient import TestClient

from ladle.app import build_app
from ladle.config import Settings
from ladle.runtimes.fake import FakeBackend
from tests.integration.conftest import ADMIN, FakeRegistry, create

APPS = "/api/2.0/apps"
SPS = "/api/2.0/preview/scim/v2/ServicePrincipals"
HOME = "/Workspace/Users/admin"


class FakeRunner:
    """Records launches; a launch whose command is ["fail"] fails like the real runner does."""

    def __init__(self) -> None:
        self.launches: list = []
        self.running: dict[str, str] = {}
        self.release = asyncio.Event()
        self.hold = False

    async def deploy(self, launch, on_progress):
        on_progress("Building the app's environment from requirements.txt")
        if self.hold:
            await self.release.wait()
        if launch.command == ["fail"]:
            raise RuntimeError("the app exited at once (exit code 1)")
        self.launches.append(launch)
        self.running[launch.app_name] = launch.deployment_id

    async def start(self, app_name, launch=None):
        self.running[app_name] = launch.deployment_id if launch else "?"

    async def stop(self, app_name):
        self.running.pop(app_name, None)

    async def remove(self, app_name):
        self.running.pop(app_name, None)

    def status(self, app_name):
        if app_name in self.running:
            return "ACTIVE", "RUNNING", "App is running."
        return "STOPPED", "UNAVAILABLE", "App has not been deployed."

    async def close(self):
        self.running.clear()


_n = itertools.count()


def uniq(prefix: str) -> str:
    """A name no other test of the module uses (they share one server)."""
    return f"{prefix}{next(_n)}"


@pytest.fixture(scope="module")
def runner():
    return FakeRunner()


@pytest.fixture(scope="module")
def client(tmp_path_factory, runner):
    settings = Settings(home=tmp_path_factory.mktemp("apps"), admin_token=ADMIN, reconcile_interval_s=0.05)
    app = build_app(settings, backend=FakeBackend(), registry=FakeRegistry({"m": {"1"}}), app_runner=runner)
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        yield c


def user(client, name):
    r = client.post("/api/2.0/token-management/on-behalf-of/tokens", json={"user_name": name})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token_value']}"}


def upload(client, path, text, headers=None):
    r = client.post("/api/2.0/workspace/import", headers=headers,
                    json={"path": path, "content": base64.b64encode(text.encode()).decode(),
                          "format": "AUTO", "overwrite": True})
    assert r.status_code == 200, r.text


def wait_deployment(client, app, dep_id, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = client.get(f"{APPS}/{app}/deployments/{dep_id}").json()
        if d["status"]["state"] != "IN_PROGRESS":
            return d
        time.sleep(0.02)
    raise AssertionError(f"deployment {dep_id} still in progress: {d}")


def sp_names(client):
    return {sp["displayName"] for sp in client.get(SPS).json().get("Resources", [])}


def grants(client, endpoint):
    eid = client.get(f"/api/2.0/serving-endpoints/{endpoint}").json()["id"]
    acl = client.get(f"/api/2.0/permissions/serving-endpoints/{eid}").json()["access_control_list"]
    return {e["service_principal_name"]: e["all_permissions"][0]["permission_level"]
            for e in acl if "service_principal_name" in e}


def ep_resource(endpoint, permission="CAN_QUERY", key="serving-endpoint"):
    return {"name": key, "serving_endpoint": {"name": endpoint, "permission": permission}}


@pytest.mark.parametrize("name", ["A", "a", "my_app", "-app", "app-", "x" * 31, "ápp"])
def test_bad_names_are_refused_and_nothing_is_made(client, name):
    before, apps = sp_names(client), client.get(APPS).json()["apps"]
    r = client.post(APPS, json={"name": name})
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert r.json()["message"].startswith("name:")
    assert client.get(APPS).json()["apps"] == apps and sp_names(client) == before


@pytest.mark.parametrize("resource,message", [
    (lambda ep: ep_resource("nope"), "resources[0].serving_endpoint.name: serving endpoint 'nope' does not exist"),
    (lambda ep: ep_resource(ep, "CAN_USE"), "resources.0.serving_endpoint.permission"),
    (lambda ep: {"name": "x"}, "resources.0: exactly one of serving_endpoint or secret"),
])
def test_bad_resources_are_refused_and_nothing_is_made(client, resource, message):
    ep, app = uniq("ep"), uniq("app")
    create(client, ep)
    before = sp_names(client)
    r = client.post(APPS, json={"name": app, "resources": [resource(ep)]})
    assert r.status_code == 400 and message in r.json()["message"], r.text
    assert client.get(f"{APPS}/{app}").status_code == 404 and sp_names(client) == before
    assert grants(client, ep) == {}


def test_app_principal_grants_follow_resources_and_go_with_the_app(client):
    ep, other, app = uniq("ep"), uniq("ep"), uniq("app")
    create(client, ep)
    create(client, other)
    body = client.post(APPS, json={"name": app, "resources": [ep_resource(ep)]}).json()
    assert body["compute_status"]["state"] == "ACTIVE"
    assert body["app_status"]["state"] == "UNAVAILABLE"
    assert body["url"] == f"http://testserver/apps/{app}/"
    cid = body["service_principal_client_id"]
    assert app in sp_names(client)
    assert grants(client, ep) == {cid: "CAN_QUERY"}

    r = client.patch(f"{APPS}/{app}", json={"name": app, "resources": [ep_resource(other, "CAN_VIEW")]})
    assert r.status_code == 200, r.text
    assert grants(client, ep) == {} and grants(client, other) == {cid: "CAN_VIEW"}

    r = client.patch(f"{APPS}/{app}", json={"resources": [ep_resource("missing")]})
    assert r.status_code == 400 and "resources[0].serving_endpoint.name" in r.json()["message"]
    assert grants(client, other) == {cid: "CAN_VIEW"}          # unchanged

    assert client.delete(f"{APPS}/{app}").status_code == 200
    assert client.get(f"{APPS}/{app}").status_code == 404
    assert app not in sp_names(client) and grants(client, other) == {}


def test_deploy_hands_the_runner_the_apps_environment_and_its_principal_works(client, runner):
    ep, hidden, app = uniq("ep"), uniq("ep"), uniq("app")
    create(client, ep)
    create(client, hidden)
    body = client.post(APPS, json={"name": app, "resources": [ep_resource(ep)]}).json()
    upload(client, f"{HOME}/{app}/app.yaml",
           "command: [python, app.py]\nenv:\n  - name: SERVING_ENDPOINT\n    valueFrom: serving-endpoint\n"
           "  - name: GREETING\n    value: hi\n")
    upload(client, f"{HOME}/{app}/app.py", "print('hi')\n")
    r = client.post(f"{APPS}/{app}/deployments", json={"source_code_path": f"{HOME}/{app}", "mode": "SNAPSHOT"})
    assert r.status_code == 200, r.text
    d = wait_deployment(client, app, r.json()["deployment_id"])
    assert d["status"] == {"state": "SUCCEEDED", "message": "App started successfully"}
    launch = runner.launches[-1]
    assert launch.app_name == app and launch.command == ["python", "app.py"]
    assert (launch.source_dir / "app.py").read_text() == "print('hi')\n"
    env = launch.env
    assert env["SERVING_ENDPOINT"] == ep and env["GREETING"] == "hi"
    assert env["DATABRICKS_CLIENT_ID"] == body["service_principal_client_id"]
    assert env["DATABRICKS_APP_NAME"] == app and env["DATABRICKS_APP_URL"] == f"http://testserver/apps/{app}/"
    got = client.get(f"{APPS}/{app}").json()
    assert got["active_deployment"]["deployment_id"] == d["deployment_id"]
    assert got["app_status"]["state"] == "RUNNING"

    # the app's own credentials: it may see the endpoint it was granted, not another
    tok = client.post("/oidc/v1/token", data={"grant_type": "client_credentials", "scope": "all-apis"},
                      auth=(env["DATABRICKS_CLIENT_ID"], env["DATABRICKS_CLIENT_SECRET"]))
    assert tok.status_code == 200, tok.text
    as_app = {"Authorization": f"Bearer {tok.json()['access_token']}"}
    assert client.get(f"/api/2.0/serving-endpoints/{ep}", headers=as_app).status_code == 200
    assert client.get(f"/api/2.0/serving-endpoints/{hidden}", headers=as_app).status_code == 404

    # a later edit of the workspace does not change the deployed snapshot
    upload(client, f"{HOME}/{app}/app.py", "print('changed')\n")
    assert (launch.source_dir / "app.py").read_text() == "print('hi')\n"

    # stop and start
    assert client.post(f"{APPS}/{app}/stop").json()["compute_status"]["state"] == "STOPPED"
    assert app not in runner.running
    assert client.post(f"{APPS}/{app}/start").json()["compute_status"]["state"] in ("STARTING", "ACTIVE")
    deadline = time.monotonic() + 5
    while client.get(f"{APPS}/{app}").json()["compute_status"]["state"] != "ACTIVE":
        assert time.monotonic() < deadline, client.get(f"{APPS}/{app}").json()
        time.sleep(0.02)
    assert runner.running[app] == d["deployment_id"]


@pytest.mark.parametrize("yaml_text,message", [
    ("env:\n  - name: X\n    valueFrom: no-such-key\n", "app.yaml: env[0].valueFrom (X): 'no-such-key' is not a resource"),
    ("command: [fail]\n", "the app exited at once"),
    ("env: [{name: X}]\n", "app.yaml: env[0] (X): exactly one of `value` or `valueFrom`"),
    ("commands: [x]\n", "app.yaml: unknown field 'commands'"),
    ("env:\n  - name: DATABRICKS_CLIENT_SECRET\n    value: x\n", "DATABRICKS_CLIENT_SECRET is set by ladle"),
])
def test_a_failed_deployment_names_the_problem_and_keeps_the_last_good_one(client, runner, yaml_text, message):
    ep, app = uniq("ep"), uniq("app")
    create(client, ep)
    client.post(APPS, json={"name": app, "resources": [ep_resource(ep)]})
    upload(client, f"{HOME}/{app}-good/app.py", "")
    good = client.post(f"{APPS}/{app}/deployments", json={"source_code_path": f"{HOME}/{app}-good"}).json()
    assert wait_deployment(client, app, good["deployment_id"])["status"]["state"] == "SUCCEEDED"
    upload(client, f"{HOME}/{app}-bad/app.yaml", yaml_text)
    bad = client.post(f"{APPS}/{app}/deployments", json={"source_code_path": f"{HOME}/{app}-bad"}).json()
    d = wait_deployment(client, app, bad["deployment_id"])
    assert d["status"]["state"] == "FAILED" and message in d["status"]["message"], d
    assert client.get(f"{APPS}/{app}").json()["active_deployment"]["deployment_id"] == good["deployment_id"]
    assert runner.running[app] == good["deployment_id"]
    listed = client.get(f"{APPS}/{app}/deployments").json()["app_deployments"]
    assert [x["deployment_id"] for x in listed] == [bad["deployment_id"], good["deployment_id"]]


@pytest.mark.parametrize("body,status,text", [
    ({"source_code_path": "/Workspace/Users/admin/none"}, 404, "source_code_path"),
    ({"source_code_path": "relative/path"}, 400, "source_code_path"),
    ({"source_code_path": "/Workspace/Users/admin/../../etc"}, 400, "source_code_path"),
    ({}, 400, "source_code_path: required"),
    ({"source_code_path": 5}, 400, "source_code_path"),
])
def test_bad_deployments_are_refused_before_anything_changes(client, body, status, text):
    app = uniq("app")
    client.post(APPS, json={"name": app})
    r = client.post(f"{APPS}/{app}/deployments", json=body)
    assert r.status_code == status and text in r.json()["message"], r.text
    assert client.get(f"{APPS}/{app}/deployments").json()["app_deployments"] == []


def test_only_managers_change_an_app_and_users_see_only_what_they_may_use(client):
    a_name, b_name, app, ep = uniq("alice"), uniq("bob"), uniq("app"), uniq("ep")
    alice, bob = user(client, a_name), user(client, b_name)
    assert client.post(APPS, json={"name": app}, headers=alice).status_code == 200
    assert client.get(f"{APPS}/{app}", headers=bob).status_code == 404
    assert client.get(APPS, headers=bob).json()["apps"] == []
    r = client.patch(f"/api/2.0/permissions/apps/{app}", headers=alice,
                     json={"access_control_list": [{"user_name": b_name, "permission_level": "CAN_USE"}]})
    assert r.status_code == 200, r.text
    assert {"user_name": b_name, "display_name": b_name,
            "all_permissions": [{"permission_level": "CAN_USE", "inherited": False}]} in r.json()["access_control_list"]
    assert client.get(f"{APPS}/{app}", headers=bob).status_code == 200
    assert [x["name"] for x in client.get(APPS, headers=bob).json()["apps"]] == [app]
    assert client.post(f"{APPS}/{app}/stop", headers=bob).status_code == 403
    assert client.delete(f"{APPS}/{app}", headers=bob).status_code == 403
    r = client.put(f"/api/2.0/permissions/apps/{app}", headers=alice,
                   json={"access_control_list": [{"user_name": b_name, "permission_level": "CAN_QUERY"}]})
    assert r.status_code == 400 and "permission_level" in r.json()["message"]
    # alice may not grant her app an endpoint she cannot see
    create(client, ep)
    r = client.patch(f"{APPS}/{app}", headers=alice, json={"resources": [ep_resource(ep)]})
    assert r.status_code == 400 and f"serving endpoint '{ep}' does not exist" in r.json()["message"]
    levels = client.get(f"/api/2.0/permissions/apps/{app}/permissionLevels", headers=alice).json()
    assert [x["permission_level"] for x in levels["permission_levels"]] == ["CAN_USE", "CAN_MANAGE"]


def test_a_second_app_of_the_same_name_is_refused(client):
    app = uniq("app")
    assert client.post(APPS, json={"name": app}).status_code == 200
    before = sp_names(client)
    r = client.post(APPS, json={"name": app})
    assert r.status_code == 409 and r.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    assert sp_names(client) == before


def test_no_compute_creates_a_stopped_app(client):
    r = client.post(APPS + "?no_compute=true", json={"name": uniq("app"), "description": "d"})
    assert r.json()["compute_status"]["state"] == "STOPPED" and r.json()["description"] == "d"


def test_deleting_an_app_mid_deployment_ends_the_deployment(client, runner):
    app = uniq("app")
    client.post(APPS, json={"name": app})
    upload(client, f"{HOME}/{app}/app.py", "")
    runner.hold, runner.release = True, asyncio.Event()      # the runner never finishes this one
    try:
        dep = client.post(f"{APPS}/{app}/deployments", json={"source_code_path": f"{HOME}/{app}"}).json()
        assert client.get(f"{APPS}/{app}").json()["pending_deployment"]["deployment_id"] == dep["deployment_id"]
        r = client.post(f"{APPS}/{app}/deployments", json={"source_code_path": f"{HOME}/{app}"})
        assert r.status_code == 409 and r.json()["error_code"] == "RESOURCE_CONFLICT"
        assert client.delete(f"{APPS}/{app}").status_code == 200
    finally:
        runner.hold = False
    assert client.get(f"{APPS}/{app}").status_code == 404
    assert app not in runner.running and all(x.app_name != app for x in runner.launches)


def test_a_secret_resource_grants_read_and_feeds_value_from(client, runner):
    scope, app = uniq("scope"), uniq("app")
    assert client.post("/api/2.0/secrets/scopes/create", json={"scope": scope}).status_code == 200
    client.post("/api/2.0/secrets/put", json={"scope": scope, "key": "k", "string_value": "s3cret"})
    res = {"name": "api-key", "secret": {"scope": scope, "key": "k", "permission": "READ"}}
    r = client.post(APPS, json={"name": app, "resources": [{**res, "secret": {**res["secret"], "key": "nokey"}}]})
    assert r.status_code == 400 and r.json()["message"].startswith("resources[0].secret.key:")
    cid = client.post(APPS, json={"name": app, "resources": [res]}).json()["service_principal_client_id"]
    acls = client.get("/api/2.0/secrets/acls/list", params={"scope": scope}).json()["items"]
    assert {"principal": cid, "permission": "READ"} in acls
    upload(client, f"{HOME}/{app}/app.yaml", "env:\n  - {name: API_KEY, valueFrom: api-key}\n")
    dep = client.post(f"{APPS}/{app}/deployments", json={"source_code_path": f"{HOME}/{app}"}).json()
    assert wait_deployment(client, app, dep["deployment_id"])["status"]["state"] == "SUCCEEDED"
    assert runner.launches[-1].env["API_KEY"] == "s3cret"
    assert client.patch(f"{APPS}/{app}", json={"resources": []}).status_code == 200
    acls = client.get("/api/2.0/secrets/acls/list", params={"scope": scope}).json()["items"]
    assert all(a["principal"] != cid for a in acls)


def test_after_a_restart_an_app_runs_its_active_deployment_again(tmp_path):
    settings = Settings(home=tmp_path, admin_token=ADMIN, reconcile_interval_s=0.05)
    first, second = FakeRunner(), FakeRunner()
    with TestClient(build_app(settings, backend=FakeBackend(), registry=FakeRegistry({}), app_runner=first),
                    headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        c.post(APPS, json={"name": "kept"})
        upload(c, f"{HOME}/kept/app.py", "")
        dep = c.post(f"{APPS}/kept/deployments", json={"source_code_path": f"{HOME}/kept"}).json()
        assert wait_deployment(c, "kept", dep["deployment_id"])["status"]["state"] == "SUCCEEDED"
    with TestClient(build_app(settings, backend=FakeBackend(), registry=FakeRegistry({}), app_runner=second),
                    headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        deadline = time.monotonic() + 5
        while c.get(f"{APPS}/kept").json()["compute_status"]["state"] != "ACTIVE":
            assert time.monotonic() < deadline, c.get(f"{APPS}/kept").json()
            time.sleep(0.02)
        assert second.running["kept"] == dep["deployment_id"]


def test_a_manager_of_the_app_keeps_resources_they_could_not_grant(client):
    ep, other, app, name = uniq("ep"), uniq("ep"), uniq("app"), uniq("dana")
    create(client, ep)
    create(client, other)
    body = client.post(APPS, json={"name": app, "resources": [ep_resource(ep)]}).json()
    client.patch(f"/api/2.0/permissions/apps/{app}",
                 json={"access_control_list": [{"user_name": name, "permission_level": "CAN_MANAGE"}]})
    dana = user(client, name)
    r = client.patch(f"{APPS}/{app}", headers=dana, json={"description": "new", "resources": [ep_resource(ep)]})
    assert r.status_code == 200 and r.json()["description"] == "new", r.text
    r = client.patch(f"{APPS}/{app}", headers=dana, json={"resources": [ep_resource(ep), ep_resource(other, key="b")]})
    assert r.status_code == 400 and "resources[1].serving_endpoint.name" in r.json()["message"]
    assert grants(client, ep) == {body["service_principal_client_id"]: "CAN_QUERY"} and grants(client, other) == {}
