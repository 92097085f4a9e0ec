"""Client mistakes get Databricks-shaped 4xx answers that name the field, change nothing,
and never make the server log a traceback."""

from __future__ import annotations

import contextlib
import socket

import psutil
import pytest

from e2e_support import entity, wait_for

EXTERNAL = {"name": "gpt-4o", "provider": "openai", "task": "llm/v1/chat",
            "openai_config": {"openai_api_key": "{{secrets/scope/key}}"}}


def _split(a: int, b: int) -> dict:
    return {"routes": [{"served_model_name": "a", "traffic_percentage": a},
                       {"served_model_name": "b", "traffic_percentage": b}]}


BAD_CREATES = {
    "bad endpoint name": ({"name": "bad name!", "config": {"served_entities": [entity("1")]}}, "name"),
    "unknown model": ({"name": "e2e-bad-1", "config": {"served_entities": [
        {"entity_name": "main.default.nope", "entity_version": "1"}]}}, "entity_name"),
    "unknown version": ({"name": "e2e-bad-2", "config": {"served_entities": [entity("99")]}}, "entity_"),
    "traffic not 100": ({"name": "e2e-bad-3", "config": {
        "served_entities": [entity("1", name="a"), entity("2", name="b")],
        "traffic_config": _split(50, 40)}}, "traffic_config"),
    "route to unknown entity": ({"name": "e2e-bad-4", "config": {
        "served_entities": [entity("1", name="a")],
        "traffic_config": {"routes": [{"served_model_name": "zzz", "traffic_percentage": 100}]}}},
        "traffic_config"),
    "16 served entities": ({"name": "e2e-bad-5", "config": {
        "served_entities": [entity("1", name=f"e{i}") for i in range(16)],
        "traffic_config": {"routes": [{"served_model_name": "e0", "traffic_percentage": 100}]}}},
        "served_entities"),
    "unknown workload size": ({"name": "e2e-bad-6", "config": {"served_entities": [
        entity("1", workload_size="Gigantic")]}}, "workload_size"),
    "entity and external model": ({"name": "e2e-bad-7", "config": {"served_entities": [
        {"entity_name": "main.default.iris", "entity_version": "1", "external_model": EXTERNAL}]}},
        "external_model"),
    "wrong type bool": ({"name": "e2e-bad-8", "config": {"served_entities": [
        entity("1", scale_to_zero_enabled="maybe")]}}, "scale_to_zero_enabled"),
    "wrong type list": ({"name": "e2e-bad-9", "config": {"served_entities": "iris"}}, "served_entities"),
    "wrong type name": ({"name": 12, "config": {"served_entities": [entity("1")]}}, "name"),
}


@pytest.fixture(autouse=True)
def no_traceback(server):
    """Whatever a test of this module sends, the server logs no traceback and no 500 for it."""
    mark = len(server.output())
    yield
    new = server.output()[mark:]
    assert "Traceback" not in new, new[-5000:]
    assert " 500 " not in new


@pytest.fixture(scope="module")
def names_before(admin, iris_endpoint):
    return {e["name"] for e in admin.get("/api/2.0/serving-endpoints").json()["endpoints"]}


def _assert_invalid(r, field: str) -> None:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE", body
    assert field in body["message"], body["message"]
    assert body["details"][0]["@type"] == "type.googleapis.com/google.rpc.RequestInfo"


@pytest.mark.parametrize("case", list(BAD_CREATES), ids=list(BAD_CREATES))
def test_invalid_create_is_400_naming_the_field_and_stores_nothing(admin, names_before, case):
    body, field = BAD_CREATES[case]
    _assert_invalid(admin.post("/api/2.0/serving-endpoints", json=body), field)
    names = {e["name"] for e in admin.get("/api/2.0/serving-endpoints").json()["endpoints"]}
    assert not {n for n in names - names_before if n.startswith("e2e-bad") or n == "bad name!"}
    if isinstance(body.get("name"), str):
        assert admin.get(f"/api/2.0/serving-endpoints/{body['name']}").status_code in (400, 404)


def test_malformed_json_is_400(admin, names_before):
    r = admin.post("/api/2.0/serving-endpoints", content=b'{"name": "e2e-bad-10", "config": ',
                   headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "JSON" in r.json()["message"]
    r = admin.put("/api/2.0/serving-endpoints/iris/config", content=b"[1, 2",
                  headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_invalid_update_is_400_and_changes_nothing(admin, iris_endpoint):
    before = admin.get("/api/2.0/serving-endpoints/iris").json()
    r = admin.put("/api/2.0/serving-endpoints/iris/config", json={
        "served_entities": [entity("1", name="a"), entity("2", name="b")], "traffic_config": _split(70, 70)})
    _assert_invalid(r, "traffic_config")
    r = admin.put("/api/2.0/serving-endpoints/iris/config",
                  json={"served_entities": [entity("1", workload_size="Huge")]})
    _assert_invalid(r, "workload_size")
    after = admin.get("/api/2.0/serving-endpoints/iris").json()
    assert after["config"] == before["config"]
    assert after["state"] == before["state"] and "pending_config" not in after


def test_duplicate_create_is_409(admin, iris_endpoint):
    r = admin.post("/api/2.0/serving-endpoints", json={"name": "iris", "config": {
        "served_entities": [entity("2")]}})
    assert r.status_code == 409 and r.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    assert admin.get("/api/2.0/serving-endpoints/iris").json()["config"]["served_entities"][0][
        "entity_version"] == iris_endpoint["config"]["served_entities"][0]["entity_version"]


def test_unknown_endpoint_is_404_everywhere(admin):
    for method, path in [
        ("GET", "/api/2.0/serving-endpoints/e2e-nope"), ("DELETE", "/api/2.0/serving-endpoints/e2e-nope"),
        ("PUT", "/api/2.0/serving-endpoints/e2e-nope/config"),
        ("GET", "/api/2.0/serving-endpoints/e2e-nope/served-models/x/logs"),
        ("POST", "/serving-endpoints/e2e-nope/invocations"),
        ("GET", "/api/2.0/permissions/serving-endpoints/" + "f" * 32),
    ]:
        body = {"served_entities": [entity("1")]} if method == "PUT" else (
            {"inputs": [[1]]} if method == "POST" else None)
        r = admin.request(method, path, json=body)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST", (path, r.text)
    r = admin.post("/serving-endpoints/iris/served-models/nope/invocations", json={"inputs": [[1, 2, 3, 4]]})
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_invocation_missing_a_column_is_400_naming_it(admin, iris_endpoint):
    r = admin.post("/serving-endpoints/iris/invocations", json={"dataframe_records": [
        {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4}]})
    assert r.status_code == 400, r.text
    assert "petal_width" in r.json()["message"]
    assert r.headers["served-model-name"] == "iris-1"
    r = admin.post("/serving-endpoints/iris/invocations", json={"no_such_format": [1]})
    assert r.status_code == 400 and r.json()["error_code"] in ("BAD_REQUEST", "INVALID_PARAMETER_VALUE")
    r = admin.post("/serving-endpoints/iris/invocations", content=b"{not json",
                   headers={"content-type": "application/json"})
    assert r.status_code == 400


def test_payload_over_16_mb_is_400(admin, iris_endpoint):
    big = b'{"inputs": "' + b"x" * (16 * 1024 * 1024 + 10) + b'"}'
    r = admin.post("/serving-endpoints/iris/invocations", content=big,
                   headers={"content-type": "application/json"})
    assert r.status_code == 400 and "16 MB" in r.json()["message"]

    def chunks():  # no Content-Length: the limit holds while streaming too
        for _ in range(17):
            yield b"x" * (1024 * 1024)
    r = admin.post("/serving-endpoints/iris/invocations", content=chunks(),
                   headers={"content-type": "application/json"})
    assert r.status_code == 400 and "16 MB" in r.json()["message"]
    assert admin.post("/serving-endpoints/iris/invocations", json={"dataframe_records": [
        {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]}).status_code == 200


def _server_conns(server, port: int) -> list:
    """The server's sockets whose peer is our local `port`."""
    out = []
    for p in server.proc.tree():
        with contextlib.suppress(psutil.Error):
            out += [c for c in p.net_connections("tcp") if c.raddr and c.raddr.port == port]
    return out


def test_client_hanging_up_mid_body_is_not_a_server_error(server, admin, iris_endpoint):
    for path in ("/serving-endpoints/iris/invocations", "/api/2.0/serving-endpoints",
                 "/api/2.0/mlflow/registered-models/create"):
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            port = s.getsockname()[1]
            s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.admin_token}\r\n"
                      "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"name\":".encode())
            wait_for(lambda: _server_conns(server, port), 10, 0.02, what="the server to accept the connection")
        # the server notices the hang-up and closes its side (its no_traceback check follows)
        wait_for(lambda: not [c for c in _server_conns(server, port) if c.status == psutil.CONN_ESTABLISHED],
                 10, 0.02, what="the server to close the half-sent request")
    assert admin.get("/api/2.0/serving-endpoints/iris").status_code == 200
