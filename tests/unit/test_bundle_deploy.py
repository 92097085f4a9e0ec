"""`ladle bundle deploy/destroy` against an in-memory fake of the server's API: the plan, a second
deploy that changes nothing, updates field by field, recreation on a rename, permissions that keep
grants made elsewhere, a failed create finished by destroy, and destroy removing exactly what the
bundle created."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import click
import pytest

from ladle.cli.bundles.deploy import Deployer
from ladle.cli.bundles.loader import load
from ladle.cli.bundles.resolve import Bundle, resolve
from ladle.cli.bundles.state import load_state
from ladle.cli.client import ApiError

USER = "jane@example.com"
YML = """\
bundle:
  name: shop
variables:
  version: {default: "1"}
resources:
  model_serving_endpoints:
    ep:
      name: scorer
      config:
        served_entities:
          - {entity_name: main.default.iris, entity_version: "${var.version}", workload_size: Small}
      tags:
        - {key: team, value: ml}
      permissions:
        - {level: CAN_QUERY, group_name: analysts}
  apps:
    web:
      name: shop-web
      source_code_path: ./app
      resources:
        - name: model
          serving_endpoint: {name: "${resources.model_serving_endpoints.ep.name}", permission: CAN_QUERY}
"""


class FakeServer:
    """Endpoints, apps, ACLs and workspace files in memory; every write is recorded."""

    def __init__(self) -> None:
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.apps: dict[str, dict[str, Any]] = {}
        self.acls: dict[str, dict[tuple[str, str], str]] = {}
        self.files: dict[str, bytes] = {}
        self.writes: list[tuple[str, str]] = []
        self.fail_next_update = False
        self._ids = 0

    def call(self, method: str, path: str, body: Any = None) -> Any:
        path = unquote(path.split("?")[0])
        if method != "GET":
            self.writes.append((method, path))
        parts = path.strip("/").split("/")[2:]
        if parts[0] == "serving-endpoints":
            return self._endpoint(method, parts[1:], body)
        if parts[0] == "apps":
            return self._app(method, parts[1:], body)
        if parts[0] == "permissions":
            return self._acl(method, f"{parts[1]}/{parts[2]}", body)
        if parts[0] == "workspace":
            if parts[1] == "import":
                self.files[body["path"]] = body["content"].encode()
            elif parts[1] == "delete":
                self.files = {p: c for p, c in self.files.items() if not p.startswith(body["path"])}
            return {}
        raise AssertionError(f"unexpected {method} {path}")

    def _endpoint(self, method: str, rest: list[str], body: Any) -> Any:
        if method == "POST" and not rest:
            if body["name"] in self.endpoints:
                raise ApiError(409, "exists", "RESOURCE_ALREADY_EXISTS")
            self._ids += 1
            state = "UPDATE_FAILED" if self.fail_next_update else "NOT_UPDATING"
            self.endpoints[body["name"]] = {**body, "id": f"id{self._ids}",
                                            "state": {"config_update": state, "ready": "READY"}}
            self.acls[f"serving-endpoints/id{self._ids}"] = {("user_name", USER): "CAN_MANAGE"}
            return self.endpoints[body["name"]]
        ep = self.endpoints.get(rest[0])
        if ep is None:
            raise ApiError(404, f"Endpoint with name '{rest[0]}' does not exist.", "RESOURCE_DOES_NOT_EXIST")
        if method == "GET":
            return ep
        if method == "DELETE":
            del self.endpoints[rest[0]]
            return {}
        if rest[1:] == ["config"]:
            ep["config"] = body
        elif rest[1:] == ["tags"]:
            tags = {t["key"]: t for t in ep.get("tags") or [] if t["key"] not in body["delete_keys"]}
            tags.update({t["key"]: t for t in body["add_tags"]})
            ep["tags"] = list(tags.values())
        return ep

    def _app(self, method: str, rest: list[str], body: Any) -> Any:
        if method == "POST" and not rest:
            self.apps[body["name"]] = {**body, "id": body["name"]}
            return self.apps[body["name"]]
        if rest[0] not in self.apps:
            raise ApiError(404, "no such app", "RESOURCE_DOES_NOT_EXIST")
        if method == "DELETE":
            del self.apps[rest[0]]
        elif method == "PATCH":
            self.apps[rest[0]].update(body)
        return self.apps.get(rest[0], {})

    def _acl(self, method: str, key: str, body: Any) -> Any:
        if method == "PUT":
            self.acls[key] = {(k, e[k]): e["permission_level"] for e in body["access_control_list"]
                              for k in ("user_name", "group_name", "service_principal_name") if k in e}
        return {"access_control_list": [{kind: who, "all_permissions": [{"permission_level": lvl, "inherited": False}]}
                                        for (kind, who), lvl in self.acls.get(key, {}).items()]}


def bundle_at(root: Path, text: str = YML, overrides: dict[str, str] | None = None) -> Bundle:
    (root / "databricks.yml").write_text(text)
    if not (root / "app").is_dir():
        (root / "app").mkdir()
        (root / "app" / "app.py").write_text("print('hi')\n")
        (root / "app" / "requirements.txt").write_text("")
    return resolve(load(root), None, USER, overrides or {}, {})


def deploy(server: FakeServer, b: Bundle) -> list[str]:
    deployer = Deployer(server, b, load_state(b.state_dir, b.name, b.target), 5.0, lambda _m: None)  # type: ignore[arg-type]
    actions = deployer.plan()
    deployer.apply(actions)
    return [str(a) for a in actions]


def destroy(server: FakeServer, b: Bundle) -> list[str]:
    deployer = Deployer(server, b, load_state(b.state_dir, b.name, b.target), 5.0, lambda _m: None)  # type: ignore[arg-type]
    actions = deployer.destroy_plan()
    deployer.apply(actions)
    deployer.remove_files()
    return [str(a) for a in actions]


@pytest.fixture()
def server() -> FakeServer:
    return FakeServer()


def test_first_deploy_creates_then_a_second_changes_nothing(server, tmp_path):
    b = bundle_at(tmp_path)
    plan = deploy(server, b)
    assert [p.split()[:2] for p in plan] == [["create", "model_serving_endpoints.ep"], ["create", "apps.web"]]
    assert server.endpoints["scorer"]["config"]["served_entities"][0]["entity_version"] == "1"
    assert "permissions" not in server.endpoints["scorer"]  # sent to the permissions API instead
    assert server.acls["serving-endpoints/id1"] == {("user_name", USER): "CAN_MANAGE",
                                                    ("group_name", "analysts"): "CAN_QUERY"}
    assert server.apps["shop-web"]["resources"][0]["serving_endpoint"]["name"] == "scorer"
    files = f"/Workspace/Users/{USER}/.bundle/shop/default/files/app"
    assert set(server.files) == {f"{files}/app.py", f"{files}/requirements.txt"}
    state = json.loads((tmp_path / ".databricks/bundle/default/resources.json").read_text())
    assert state["resources"]["model_serving_endpoints"]["ep"]["id"] == "id1"

    server.writes.clear()
    assert deploy(server, bundle_at(tmp_path)) == []
    assert server.writes == []


def test_changes_are_applied_field_by_field(server, tmp_path):
    deploy(server, bundle_at(tmp_path))
    server.writes.clear()
    changed = YML.replace("{key: team, value: ml}", "{key: owner, value: jane}")
    plan = deploy(server, bundle_at(tmp_path, changed, {"version": "2"}))
    assert plan == ["update   model_serving_endpoints.ep scorer (config, tags)"]
    assert server.writes == [("PUT", "/api/2.0/serving-endpoints/scorer/config"),
                             ("PATCH", "/api/2.0/serving-endpoints/scorer/tags")]
    assert server.endpoints["scorer"]["tags"] == [{"key": "owner", "value": "jane"}]
    assert server.endpoints["scorer"]["config"]["served_entities"][0]["entity_version"] == "2"

    (tmp_path / "app" / "app.py").write_text("print('changed')\n")
    assert deploy(server, bundle_at(tmp_path, changed, {"version": "2"})) == [
        "update   apps.web shop-web (source_hash)"]


def test_a_rename_recreates_and_a_removed_resource_is_deleted(server, tmp_path):
    deploy(server, bundle_at(tmp_path))
    server.endpoints["not-ours"] = {"name": "not-ours", "id": "x", "state": {}}
    renamed = YML.replace("name: scorer", "name: scorer2")
    assert deploy(server, bundle_at(tmp_path, renamed))[0].startswith("recreate model_serving_endpoints.ep scorer2")
    assert set(server.endpoints) == {"scorer2", "not-ours"}
    without_app = renamed[:renamed.index("  apps:")]
    assert deploy(server, bundle_at(tmp_path, without_app)) == ["delete   apps.web shop-web"]
    assert server.apps == {} and set(server.endpoints) == {"scorer2", "not-ours"}


def test_a_resource_deleted_behind_the_bundles_back_is_created_again(server, tmp_path):
    deploy(server, bundle_at(tmp_path))
    del server.endpoints["scorer"]
    assert deploy(server, bundle_at(tmp_path)) == [
        "create   model_serving_endpoints.ep scorer (missing on the server)"]
    assert "scorer" in server.endpoints


def test_permissions_keep_grants_made_elsewhere(server, tmp_path):
    deploy(server, bundle_at(tmp_path))
    server.acls["serving-endpoints/id1"][("service_principal_name", "app-sp")] = "CAN_QUERY"
    moved = YML.replace("{level: CAN_QUERY, group_name: analysts}", "{level: CAN_VIEW, user_name: bob@example.com}")
    assert deploy(server, bundle_at(tmp_path, moved)) == ["update   model_serving_endpoints.ep scorer (permissions)"]
    assert server.acls["serving-endpoints/id1"] == {("user_name", USER): "CAN_MANAGE",
                                                    ("service_principal_name", "app-sp"): "CAN_QUERY",
                                                    ("user_name", "bob@example.com"): "CAN_VIEW"}


def test_destroy_removes_exactly_what_the_bundle_created(server, tmp_path):
    b = bundle_at(tmp_path)
    deploy(server, b)
    server.endpoints["not-ours"] = {"name": "not-ours", "id": "x", "state": {}}
    server.files["/Workspace/Users/someone/else.py"] = b"x"
    assert destroy(server, b) == ["delete   apps.web shop-web", "delete   model_serving_endpoints.ep scorer"]
    assert server.apps == {} and set(server.endpoints) == {"not-ours"}
    assert set(server.files) == {"/Workspace/Users/someone/else.py"}
    assert load_state(b.state_dir, b.name, b.target).empty()


def test_a_failed_create_is_recorded_so_destroy_removes_it(server, tmp_path):
    b = bundle_at(tmp_path, YML[:YML.index("  apps:")])
    server.fail_next_update = True
    with pytest.raises(click.ClickException, match="UPDATE_FAILED"):
        deploy(server, b)
    assert load_state(b.state_dir, b.name, b.target).get("model_serving_endpoints", "ep").spec is None
    assert destroy(server, b) == ["delete   model_serving_endpoints.ep scorer"]
    assert server.endpoints == {}


def test_an_update_refused_half_way_is_applied_again_not_recreated(server, tmp_path):
    deploy(server, bundle_at(tmp_path))
    changed = YML.replace("{key: team, value: ml}", "{key: owner, value: jane}")
    original = server._endpoint

    def refuse_tags(method, rest, body):
        if rest[1:] == ["tags"]:
            raise ApiError(400, "tags: refused", "INVALID_PARAMETER_VALUE")
        return original(method, rest, body)

    server._endpoint = refuse_tags
    with pytest.raises(ApiError, match="tags: refused"):
        deploy(server, bundle_at(tmp_path, changed, {"version": "2"}))
    server._endpoint = original
    server.writes.clear()
    assert deploy(server, bundle_at(tmp_path, changed, {"version": "2"})) == [
        "update   model_serving_endpoints.ep scorer (config, tags)"]
    assert ("DELETE", "/api/2.0/serving-endpoints/scorer") not in server.writes
    assert server.endpoints["scorer"]["tags"] == [{"key": "owner", "value": "jane"}]
    assert deploy(server, bundle_at(tmp_path, changed, {"version": "2"})) == []


def test_a_recreate_waits_until_the_old_one_is_gone(server, tmp_path, monkeypatch):
    import ladle.cli.bundles.deploy as deploy_module

    monkeypatch.setattr(deploy_module, "GONE_POLL_S", 0.0)
    deploy(server, bundle_at(tmp_path))
    original = server._endpoint
    lingering = {"left": 2}

    def slow_delete(method, rest, body):  # the server answers the GET twice more before it is gone
        if method == "DELETE":
            gone = dict(server.endpoints[rest[0]])
            original(method, rest, body)
            server.endpoints[rest[0]] = gone
            return {}
        if method == "GET" and rest and lingering["left"] and rest[0] in server.endpoints and \
                server.endpoints[rest[0]].get("route_optimized") is None:
            lingering["left"] -= 1
            if not lingering["left"]:
                del server.endpoints[rest[0]]
        return original(method, rest, body)

    server._endpoint = slow_delete
    optimized = YML.replace("      tags:\n", "      route_optimized: true\n      tags:\n", 1)
    assert deploy(server, bundle_at(tmp_path, optimized))[0].startswith("recreate model_serving_endpoints.ep scorer")
    assert server.endpoints["scorer"]["route_optimized"] is True and lingering["left"] == 0


def test_numbers_where_strings_belong_are_sent_as_strings(server, tmp_path):
    unquoted = YML.replace('entity_version: "${var.version}"', "entity_version: 3").replace("value: ml", "value: 7")
    b = bundle_at(tmp_path, unquoted)
    from ladle.cli.bundles.schema import check_document

    assert [str(d) for doc in load(tmp_path).documents for d in check_document(doc.data, doc.locs)] == []
    deploy(server, b)
    ep = server.endpoints["scorer"]
    assert ep["config"]["served_entities"][0]["entity_version"] == "3" and ep["tags"] == [{"key": "team", "value": "7"}]
    assert deploy(server, bundle_at(tmp_path, unquoted)) == []
