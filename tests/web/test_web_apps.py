"""Apps in the browser: the Apps page lists an app (status, URL, resources); its page shows the
serving endpoint it uses, its service principal, a deployment and its log (refreshed after a
request through the app's URL); Start/Stop and the log are for managers only (a CAN_USE user
sees neither, nor apps not shared with them); the endpoint's page lists the app. The app is a
few lines of stdlib Python (empty requirements.txt: no package to install) deployed over the
API against the session's real server."""

from __future__ import annotations

import base64
import re
import secrets
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from ladle.testing.process import LadleProcess
from ladle.testing.waiting import wait_until

from web_support import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

APP_PY = textwrap.dedent("""
    import os
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"hello from the web test app"
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            print("request", self.path, flush=True)

    print("web test app listening on", os.environ["DATABRICKS_APP_PORT"], flush=True)
    HTTPServer(("127.0.0.1", int(os.environ["DATABRICKS_APP_PORT"])), H).serve_forever()
""")
APP_YAML = 'command: ["python", "app.py"]\nenv:\n  - name: ENDPOINT\n    valueFrom: model\n'


@pytest.fixture(scope="module")
def api(ladle: LadleProcess):
    with ladle.client() as c:
        yield c


def _upload(api: httpx.Client, folder: str, files: dict[str, str]) -> None:
    for name, text in files.items():
        r = api.post("/api/2.0/workspace/import", json={
            "path": f"{folder}/{name}", "content": base64.b64encode(text.encode()).decode(),
            "format": "AUTO", "overwrite": True})
        assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def deployed(api: httpx.Client, fake_llm):
    """An external-model endpoint (no replica to start) and an app using it as resource `model`
    with CAN_QUERY, deployed and RUNNING."""
    t0 = time.monotonic()
    ep, name = f"ep-apps-{secrets.token_hex(2)}", f"web-app-{secrets.token_hex(2)}"
    r = api.post("/api/2.0/serving-endpoints", json={"name": ep, "config": {"served_entities": [
        {"name": "tiny", "external_model": {"name": "tiny", "provider": "custom", "task": "llm/v1/chat",
                                            "custom_provider_config": {
                                                "custom_provider_url": fake_llm.url,
                                                "bearer_token_auth": {"token_plaintext": "upstream-secret"}}}}]}})
    assert r.status_code == 200, r.text
    r = api.post("/api/2.0/apps", json={"name": name, "description": "The web test's app", "resources": [
        {"name": "model", "serving_endpoint": {"name": ep, "permission": "CAN_QUERY"}}]})
    assert r.status_code == 200, r.text
    folder = f"/Workspace/Users/admin/apps/{name}"
    _upload(api, folder, {"app.py": APP_PY, "app.yaml": APP_YAML, "requirements.txt": ""})
    r = api.post(f"/api/2.0/apps/{name}/deployments", json={"source_code_path": folder})
    assert r.status_code == 200, r.text
    dep = r.json()["deployment_id"]

    def finished():
        d = api.get(f"/api/2.0/apps/{name}/deployments/{dep}").json()
        return d if d["status"]["state"] != "IN_PROGRESS" else None

    d = wait_until(finished, 120, 0.25, what=f"deployment of {name}")
    assert d["status"]["state"] == "SUCCEEDED", d
    print(f"\nendpoint {ep} and app {name} deployed in {time.monotonic() - t0:.1f}s")
    try:
        yield {"ep": ep, "name": name, "folder": folder, "app": api.get(f"/api/2.0/apps/{name}").json()}
    finally:
        api.delete(f"/api/2.0/apps/{name}")
        api.delete(f"/api/2.0/serving-endpoints/{ep}")


def test_apps_page_lists_the_app_and_its_page_shows_resources_deployment_logs(page, ladle: LadleProcess, api, deployed, shots: Path):
    from playwright.sync_api import expect

    name, ep, app = deployed["name"], deployed["ep"], deployed["app"]
    sign_in(page, ladle.admin_token)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Apps").click()
    expect(page).to_have_url(re.compile(r"/ui/apps$"))
    row = page.locator(f'#apps-table tr[data-app="{name}"]')
    expect(row).to_contain_text("Running")
    expect(row).to_contain_text("Compute active")
    expect(row.get_by_role("link", name=app["url"])).to_have_attribute("href", app["url"])
    expect(row.get_by_role("link", name=ep)).to_have_attribute("href", f"/ui/endpoints/{ep}")
    page.screenshot(path=str(shots / "apps-01-list.png"), full_page=True)

    row.get_by_role("link", name=name, exact=True).click()
    expect(page).to_have_url(re.compile(rf"/ui/apps/{name}$"))
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    props = page.locator("#app-props")
    expect(props.locator('[data-prop="url"]')).to_have_text(app["url"])
    expect(props.locator('[data-prop="application-id"]')).to_have_text(app["service_principal_client_id"])
    expect(props.locator('[data-prop="service-principal"]')).to_have_text(name)
    res = page.locator('#app-resources tr[data-resource="model"]')
    expect(res).to_contain_text("Serving endpoint")
    expect(res).to_contain_text("CAN_QUERY")
    expect(res.get_by_role("link", name=ep)).to_have_attribute("href", f"/ui/endpoints/{ep}")
    dep = page.locator("#app-deployments tbody tr").first
    expect(dep).to_contain_text("Succeeded")
    expect(dep).to_contain_text(app["active_deployment"]["status"]["message"])
    expect(dep).to_contain_text(deployed["folder"].removeprefix("/Workspace"))
    logs = page.locator("#app-logs")
    expect(logs).to_contain_text("web test app listening on")

    # a request through the app's URL shows up in the log after Refresh
    r = httpx.get(app["url"] + "from-the-browser-test", headers={"Authorization": f"Bearer {ladle.admin_token}"}, timeout=30)
    assert r.status_code == 200 and r.text == "hello from the web test app"
    expect(logs).not_to_contain_text("request /from-the-browser-test")
    page.locator("#app-logs-refresh").click()
    expect(logs).to_contain_text("request /from-the-browser-test")
    page.screenshot(path=str(shots / "apps-02-detail.png"), full_page=True)

    # a manager stops and starts it
    start, stop = page.get_by_role("button", name="Start", exact=True), page.get_by_role("button", name="Stop", exact=True)
    expect(start).to_be_disabled()
    stop.click()
    head = page.locator(".page-head")
    expect(head).to_contain_text("Compute stopped")
    expect(head).to_contain_text("Unavailable")
    assert api.get(f"/api/2.0/apps/{name}").json()["compute_status"]["state"] == "STOPPED"
    expect(stop).to_be_disabled()
    start.click()
    expect(head).to_contain_text("Running", timeout=60_000)
    expect(head).to_contain_text("Compute active")

    # a deployment whose command exits at once: shown failed with the reason, the app keeps running
    bad = deployed["folder"] + "-bad"
    _upload(api, bad, {"app.py": APP_PY, "requirements.txt": "",
                       "app.yaml": 'command: ["python", "-c", "raise SystemExit(4)"]\n'})
    r = api.post(f"/api/2.0/apps/{name}/deployments", json={"source_code_path": bad})
    assert r.status_code == 200, r.text
    page.reload()     # else the page notices within its 10 s poll
    failed = page.locator(f'#app-deployments tr[data-deployment="{r.json()["deployment_id"]}"]')
    expect(failed).to_contain_text("Failed", timeout=60_000)
    expect(failed).to_contain_text("exited with code 4")
    expect(head).to_contain_text("Running")
    expect(logs).to_contain_text("exited with code 4")
    page.screenshot(path=str(shots / "apps-04-failed-deployment.png"), full_page=True)


def test_a_users_level_decides_start_stop_and_logs_and_hidden_apps_stay_hidden(page, ladle: LadleProcess, api, deployed):
    from playwright.sync_api import expect

    name, user = deployed["name"], f"apps-viewer-{secrets.token_hex(3)}@example.com"
    r = api.post("/api/2.0/token-management/on-behalf-of/tokens",
                 json={"user_name": user, "lifetime_seconds": 3600, "comment": "web apps test"})
    assert r.status_code == 200, r.text
    token = r.json()["token_value"]
    r = api.patch(f"/api/2.0/permissions/apps/{name}",
                  json={"access_control_list": [{"user_name": user, "permission_level": "CAN_USE"}]})
    assert r.status_code == 200, r.text
    sign_in(page, token)
    page.goto(f"/ui/apps/{name}")
    expect(page.locator('#app-props [data-prop="level"]')).to_have_text("CAN_USE")
    expect(page.locator('#app-resources tr[data-resource="model"]')).to_contain_text(deployed["ep"])
    expect(page.get_by_role("button", name="Stop", exact=True)).to_be_disabled()
    expect(page.get_by_role("button", name="Start", exact=True)).to_be_disabled()
    expect(page.get_by_text("Reading an app's log needs CAN_MANAGE on it.")).to_be_visible()
    expect(page.locator("#app-logs")).to_have_count(0)

    # made a manager of it: Stop and the log appear
    r = api.patch(f"/api/2.0/permissions/apps/{name}",
                  json={"access_control_list": [{"user_name": user, "permission_level": "CAN_MANAGE"}]})
    assert r.status_code == 200, r.text
    page.reload()
    expect(page.locator('#app-props [data-prop="level"]')).to_have_text("CAN_MANAGE")
    expect(page.locator("#app-logs")).to_contain_text("web test app listening on")
    expect(page.locator("#app-logs-refresh")).to_be_enabled()

    # an app the user cannot see is not there for them
    other = f"hidden-{secrets.token_hex(2)}"
    assert api.post("/api/2.0/apps", json={"name": other}).status_code == 200
    try:
        page.goto(f"/ui/apps/{other}")
        expect(page.get_by_role("alert")).to_contain_text(f"RESOURCE_DOES_NOT_EXIST: App with name {other} does not exist.")
        expect(page.locator("#app-resources")).to_have_count(0)
        page.goto("/ui/apps")
        expect(page.locator(f'#apps-table tr[data-app="{name}"]')).to_be_visible()
        expect(page.locator(f'#apps-table tr[data-app="{other}"]')).to_have_count(0)
    finally:
        api.delete(f"/api/2.0/apps/{other}")


def test_endpoint_page_lists_the_apps_that_use_it(page, ladle: LadleProcess, deployed, shots: Path):
    from playwright.sync_api import expect

    name, ep = deployed["name"], deployed["ep"]
    sign_in(page, ladle.admin_token)
    page.goto(f"/ui/endpoints/{ep}")
    used = page.locator("#used-by-apps")
    item = used.locator(f'li[data-app="{name}"]')
    expect(item).to_contain_text("CAN_QUERY")
    expect(item).to_contain_text("model")
    page.screenshot(path=str(shots / "apps-03-endpoint.png"), full_page=True)
    item.get_by_role("link", name=name).click()
    expect(page).to_have_url(re.compile(rf"/ui/apps/{name}$"))
    expect(page.locator('#app-resources tr[data-resource="model"]')).to_be_visible()
