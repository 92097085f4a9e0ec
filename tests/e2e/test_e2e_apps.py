"""Apps with databricks-sdk against a real server and a real app process: `w.workspace.upload`,
`w.apps.create`, `w.apps.deploy`, `w.apps.get`; the app (stdlib only, so its environment builds
offline) runs with its own OAuth credentials and queries the endpoint its resource granted, and
is refused by one it may only view; a deployment whose app.yaml names an unknown resource fails
naming it while the last good one keeps serving; deleting the app removes its principal and
grants."""

from __future__ import annotations

import io

import pytest
from databricks.sdk.errors import NotFound, OperationFailed
from databricks.sdk.service.apps import (
    App, AppDeployment, AppResource, AppResourceServingEndpoint,
    AppResourceServingEndpointServingEndpointPermission as Level,
)
from databricks.sdk.service.workspace import ImportFormat

from e2e_support import COLUMNS, create_endpoint, delete_endpoint

APP = "e2e-app"
VIEW_ONLY = "apps-view-only"
EXTERNAL = {"name": "m", "provider": "custom", "task": "llm/v1/chat",
            "custom_provider_config": {"custom_provider_url": "http://127.0.0.1:9/v1",
                                       "bearer_token_auth": {"token_plaintext": "not-a-real-key"}}}

# The app: on GET /query/<endpoint> it takes an M2M token with its own client id and secret and
# queries the endpoint, answering with what the endpoint said.
APP_PY = f'''
import base64, json, os, urllib.error, urllib.parse, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = os.environ["DATABRICKS_HOST"]
ROW = {{"dataframe_split": {{"columns": {COLUMNS!r}, "data": [[5.1, 3.5, 1.4, 0.2]]}}}}


def call(req):
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{{}}")


def token():
    basic = base64.b64encode(f"{{os.environ['DATABRICKS_CLIENT_ID']}}:{{os.environ['DATABRICKS_CLIENT_SECRET']}}".encode())
    req = urllib.request.Request(HOST + "/oidc/v1/token", headers={{"Authorization": b"Basic " + basic}},
                                 data=urllib.parse.urlencode({{"grant_type": "client_credentials", "scope": "all-apis"}}).encode())
    return call(req)[1]["access_token"]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1] or os.environ["SERVING_ENDPOINT"]
        req = urllib.request.Request(f"{{HOST}}/serving-endpoints/{{name}}/invocations", data=json.dumps(ROW).encode(),
                                     headers={{"Authorization": "Bearer " + token(), "Content-Type": "application/json"}})
        status, body = call(req)
        out = json.dumps({{"status": status, "body": body, "endpoint": name, "app": os.environ["DATABRICKS_APP_NAME"],
                          "user": self.headers.get("X-Forwarded-Email")}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(out)


ThreadingHTTPServer(("127.0.0.1", int(os.environ["DATABRICKS_APP_PORT"])), Handler).serve_forever()
'''
APP_YAML = "command: [python, app.py]\nenv:\n  - name: SERVING_ENDPOINT\n    valueFrom: serving-endpoint\n"
BAD_YAML = "env:\n  - name: SERVING_ENDPOINT\n    valueFrom: serving-endpiont\n"


@pytest.fixture(scope="module")
def view_only(admin):
    create_endpoint(admin, {"name": VIEW_ONLY, "config": {"served_entities": [{"name": "ext", "external_model": EXTERNAL}]}})
    yield VIEW_ONLY
    delete_endpoint(admin, VIEW_ONLY)


def _upload(w, folder: str, files: dict[str, str]) -> None:
    for name, text in files.items():
        w.workspace.upload(f"{folder}/{name}", io.BytesIO(text.encode()), format=ImportFormat.AUTO, overwrite=True)


def test_an_app_deployed_with_the_sdk_queries_what_it_was_granted(workspace, admin, server, iris_endpoint,
                                                                   view_only, wait_timeout):
    w = workspace
    me = w.current_user.me().user_name
    src, bad = f"/Workspace/Users/{me}/e2e-app", f"/Workspace/Users/{me}/e2e-app-bad"
    _upload(w, src, {"app.py": APP_PY, "app.yaml": APP_YAML, "requirements.txt": ""})
    _upload(w, bad, {"app.py": APP_PY, "app.yaml": BAD_YAML, "requirements.txt": ""})
    assert {o.path.rsplit("/", 1)[-1] for o in w.workspace.list(src)} == {"app.py", "app.yaml", "requirements.txt"}
    assert w.workspace.download(f"{src}/app.yaml").read().decode() == APP_YAML

    created = w.apps.create(App(name=APP, description="e2e", resources=[
        AppResource(name="serving-endpoint",
                    serving_endpoint=AppResourceServingEndpoint(name="iris", permission=Level.CAN_QUERY)),
        AppResource(name="view-only",
                    serving_endpoint=AppResourceServingEndpoint(name=view_only, permission=Level.CAN_VIEW)),
    ])).result(timeout=wait_timeout)
    try:
        assert created.compute_status.state.value == "ACTIVE"
        sp = w.service_principals.get(str(created.service_principal_id))
        assert sp.display_name == APP and sp.application_id == created.service_principal_client_id

        dep = w.apps.deploy(APP, AppDeployment(source_code_path=src)).result(timeout=wait_timeout)
        assert dep.status.state.value == "SUCCEEDED"
        got = w.apps.get(APP)
        assert got.url == f"{server.url}/apps/{APP}/"
        assert got.app_status.state.value == "RUNNING" and got.active_deployment.deployment_id == dep.deployment_id

        r = admin.get(got.url)            # through ladle's proxy, signed in as the admin
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["status"] == 200 and answer["endpoint"] == "iris", answer
        assert len(answer["body"]["predictions"]) == 1
        r = admin.get(f"{got.url}query/{view_only}")
        assert r.json()["status"] == 403 and r.json()["body"]["error_code"] == "PERMISSION_DENIED", r.text

        with pytest.raises(OperationFailed, match="valueFrom.*'serving-endpiont' is not a resource"):
            w.apps.deploy(APP, AppDeployment(source_code_path=bad)).result(timeout=wait_timeout)
        assert w.apps.get(APP).active_deployment.deployment_id == dep.deployment_id
        assert admin.get(got.url).json()["status"] == 200           # the last good deployment serves
        states = {d.deployment_id: d.status.state.value for d in w.apps.list_deployments(APP)}
        assert states[dep.deployment_id] == "SUCCEEDED" and sorted(states.values()) == ["FAILED", "SUCCEEDED"]

        assert w.apps.stop(APP).result(timeout=wait_timeout).compute_status.state.value == "STOPPED"
        stopped = admin.get(got.url)
        assert stopped.status_code == 503 and stopped.json()["error_code"] == "TEMPORARILY_UNAVAILABLE", stopped.text
        assert w.apps.start(APP).result(timeout=wait_timeout).compute_status.state.value == "ACTIVE"
        assert admin.get(got.url).json()["status"] == 200
        assert APP in {a.name for a in w.apps.list()}
    finally:
        w.apps.delete(APP)
    with pytest.raises(NotFound):
        w.apps.get(APP)
    with pytest.raises(NotFound):
        w.service_principals.get(str(created.service_principal_id))
    eid = admin.get("/api/2.0/serving-endpoints/iris").json()["id"]
    acl = admin.get(f"/api/2.0/permissions/serving-endpoints/{eid}").json()["access_control_list"]
    assert all(e.get("service_principal_name") != created.service_principal_client_id for e in acl)
