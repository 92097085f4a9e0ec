"""The workspace files API in-process: the SDK's multipart upload and base64 JSON import,
get-status, list, export, delete; a user confined to their own folder; bad input 400s that
change nothing."""

from __future__ import annotations

import base64
import itertools

import pytest
from starlette.testclient import TestClient

from ladle.app import build_app
from ladle.config import Settings
from ladle.runtimes.fake import FakeBackend
from tests.integration.conftest import ADMIN, FakeRegistry

WS = "/api/2.0/workspace"
_n = itertools.count()


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """One server for the module: each test works in folders of its own."""
    settings = Settings(home=tmp_path_factory.mktemp("ws"), admin_token=ADMIN)
    with TestClient(build_app(settings, backend=FakeBackend(), registry=FakeRegistry({})),
                    headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        yield c


def user(client, name):
    r = client.post("/api/2.0/token-management/on-behalf-of/tokens", json={"user_name": name})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token_value']}"}


def test_upload_as_the_sdk_sends_it_then_read_it_back(client):
    name = f"alice{next(_n)}"
    alice = user(client, name)
    path = f"/Workspace/Users/{name}/app/app.py"
    # what w.workspace.upload(path, content, format=AUTO, overwrite=True) posts
    r = client.post(f"{WS}/import", headers=alice, files={"content": ("content", b"print('hi')\n")},
                    data={"path": path, "format": "AUTO", "overwrite": "true"})
    assert r.status_code == 200, r.text
    st = client.get(f"{WS}/get-status", params={"path": path}, headers=alice).json()
    assert st["object_type"] == "FILE" and st["path"] == f"/Users/{name}/app/app.py" and st["size"] == 12
    listed = client.get(f"{WS}/list", params={"path": f"/Users/{name}/app"}, headers=alice).json()["objects"]
    assert [o["path"] for o in listed] == [f"/Users/{name}/app/app.py"]
    raw = client.get(f"{WS}/export", params={"path": path, "direct_download": "true"}, headers=alice)
    assert raw.content == b"print('hi')\n"
    js = client.get(f"{WS}/export", params={"path": path, "format": "AUTO"}, headers=alice).json()
    assert base64.b64decode(js["content"]) == b"print('hi')\n" and js["file_type"] == "py"
    r = client.post(f"{WS}/import", headers=alice, json={"path": path, "content": base64.b64encode(b"x").decode()})
    assert r.status_code == 409 and r.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    assert client.post(f"{WS}/mkdirs", headers=alice, json={"path": f"/Users/{name}/app/sub/deep"}).status_code == 200
    r = client.post(f"{WS}/delete", headers=alice, json={"path": f"/Users/{name}/app"})
    assert r.status_code == 400 and r.json()["error_code"] == "DIRECTORY_NOT_EMPTY"
    assert client.post(f"{WS}/delete", headers=alice, json={"path": f"/Users/{name}/app", "recursive": True}).status_code == 200
    r = client.get(f"{WS}/get-status", params={"path": path}, headers=alice)
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.parametrize("call", [
    lambda c, h, bob: c.post(f"{WS}/import", headers=h, json={"path": f"/Users/{bob}/x.py", "content": "eA=="}),
    lambda c, h, bob: c.post(f"{WS}/mkdirs", headers=h, json={"path": f"/Users/{bob}/dir"}),
    lambda c, h, bob: c.get(f"{WS}/get-status", headers=h, params={"path": f"/Users/{bob}/x.py"}),
    lambda c, h, bob: c.get(f"{WS}/list", headers=h, params={"path": "/Users"}),
    lambda c, h, bob: c.get(f"{WS}/export", headers=h, params={"path": f"/Users/{bob}/x.py"}),
    lambda c, h, bob: c.post(f"{WS}/delete", headers=h, json={"path": f"/Users/{bob}", "recursive": True}),
])
def test_a_user_cannot_reach_another_users_folder(client, call):
    bob = f"bob{next(_n)}"
    client.post(f"{WS}/import", json={"path": f"/Users/{bob}/x.py", "content": "eA=="})      # the admin writes it
    r = call(client, user(client, f"alice{next(_n)}"), bob)
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED", r.text
    assert client.get(f"{WS}/export", params={"path": f"/Users/{bob}/x.py"}).json()["content"] == "eA=="
    assert client.get(f"{WS}/get-status", params={"path": f"/Users/{bob}/dir"}).status_code == 404


@pytest.mark.parametrize("body,field", [
    ({"path": "/Users/{me}/../bob/x", "content": "eA=="}, "path"),
    ({"path": "relative", "content": "eA=="}, "path"),
    ({"path": "/Users/{me}/x", "content": "not base64!"}, "content"),
    ({"path": "/Users/{me}/x", "content": "eA==", "format": "DBC"}, "format"),
    ({"path": "/Users/{me}/x", "content": "eA==", "format": "ZIP"}, "format"),
    ({"path": 3, "content": "eA=="}, "path"),
    ({"content": "eA=="}, "path"),
])
def test_bad_imports_are_400s_naming_the_field_and_write_nothing(client, body, field):
    me = f"carol{next(_n)}"
    carol = user(client, me)
    if isinstance(body.get("path"), str):
        body = {**body, "path": body["path"].format(me=me)}
    r = client.post(f"{WS}/import", json=body, headers=carol)
    assert r.status_code == 400 and r.json()["message"].startswith(field), r.text
    assert client.get(f"{WS}/list", params={"path": f"/Users/{me}"}, headers=carol).json()["objects"] == []
