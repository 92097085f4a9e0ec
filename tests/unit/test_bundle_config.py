"""`ladle bundle`'s reading of databricks.yml: includes, targets, variables, references, the
development-mode prefix, and schema problems named by file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ladle.cli.bundles.diagnostics import BundleError
from ladle.cli.bundles.loader import load
from ladle.cli.bundles.resolve import resolve
from ladle.cli.bundles.schema import check_document

ROOT = """\
bundle:
  name: shop
include:
  - resources/*.yml
variables:
  version:
    default: "1"
  size:
    description: the workload size
targets:
  dev:
    mode: development
    default: true
    variables:
      size: Small
  prod:
    variables:
      size: Medium
    resources:
      model_serving_endpoints:
        ep:
          tags:
            - key: tier
              value: gold
"""
ENDPOINT = """\
resources:
  model_serving_endpoints:
    ep:
      name: scorer
      config:
        served_entities:
          - entity_name: main.default.iris
            entity_version: ${var.version}
            workload_size: ${var.size}
            scale_to_zero_enabled: false
      tags:
        - key: target
          value: ${bundle.target}
  apps:
    web:
      name: shop-web
      source_code_path: ../app
      resources:
        - name: model
          serving_endpoint:
            name: ${resources.model_serving_endpoints.ep.name}
            permission: CAN_QUERY
"""
USER = "jane.doe@example.com"


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.fixture()
def shop(tmp_path: Path) -> Path:
    return write(tmp_path, {"databricks.yml": ROOT, "resources/shop.yml": ENDPOINT})


def problems(root: Path, target: str | None = None, overrides: dict[str, str] | None = None,
             env: dict[str, str] | None = None) -> list[str]:
    loaded = load(root)
    out = [str(d) for doc in loaded.documents for d in check_document(doc.data, doc.locs)]
    try:
        resolve(loaded, target, USER, overrides or {}, env or {})
    except BundleError as exc:
        out += [str(d) for d in exc.diagnostics]
    return out


def test_development_target_prefixes_endpoint_names_and_references_follow(shop):
    b = resolve(load(shop), None, USER, {}, {})
    ep = b.resources["model_serving_endpoints"]["ep"]
    assert b.target == "dev" and ep["name"] == "dev_jane_doe_scorer"
    assert ep["config"]["served_entities"][0] == {"entity_name": "main.default.iris", "entity_version": "1",
                                                  "workload_size": "Small", "scale_to_zero_enabled": False}
    assert ep["tags"] == [{"key": "target", "value": "dev"}]
    app = b.resources["apps"]["web"]
    assert app["name"] == "shop-web"  # apps get no prefix
    assert app["resources"][0]["serving_endpoint"]["name"] == "dev_jane_doe_scorer"
    assert b.root_path == f"/Workspace/Users/{USER}/.bundle/shop/dev"
    assert b.file_path == b.root_path + "/files" and b.state_dir == shop / ".databricks" / "bundle" / "dev"


def test_target_overrides_merge_and_variables_take_var_then_env_then_target_then_default(shop):
    b = resolve(load(shop), "prod", USER, {}, {})
    ep = b.resources["model_serving_endpoints"]["ep"]
    assert ep["name"] == "scorer"  # no development prefix
    assert ep["config"]["served_entities"][0]["workload_size"] == "Medium"
    assert ep["tags"] == [{"key": "target", "value": "prod"}, {"key": "tier", "value": "gold"}]  # concatenated
    env = {"BUNDLE_VAR_version": "2", "BUNDLE_VAR_size": "Large"}
    b = resolve(load(shop), "prod", USER, {"version": "3"}, env)
    entity = b.resources["model_serving_endpoints"]["ep"]["config"]["served_entities"][0]
    assert (entity["entity_version"], entity["workload_size"]) == ("3", "Large")


def test_a_whole_string_reference_keeps_the_value_type(tmp_path):
    root = write(tmp_path, {"databricks.yml": """\
bundle: {name: typed}
variables:
  flag: {default: true}
  version: {default: 1}
resources:
  model_serving_endpoints:
    e:
      name: n-${var.version}
      route_optimized: ${var.flag}
"""})
    b = resolve(load(root), None, USER, {}, {})
    assert b.resources["model_serving_endpoints"]["e"] == {"name": "n-1", "route_optimized": True}


def test_undefined_and_unassigned_variables_are_named_with_their_line(shop):
    text = ENDPOINT.replace("${var.version}", "${var.versoin}")
    write(shop, {"resources/shop.yml": text})
    found = problems(shop, "prod", {"nope": "1"}, {})
    assert ("resources/shop.yml:8: resources.model_serving_endpoints.ep.config.served_entities[0].entity_version: "
            "reference does not exist: ${var.versoin}") in found
    assert any(p.startswith("variable nope has not been defined") for p in found)
    write(shop, {"databricks.yml": ROOT.replace('default: "1"', 'default: "${var.nothing}"')})
    assert "databricks.yml:6: variables.version: reference does not exist: ${var.nothing}" in problems(shop)
    write(shop, {"databricks.yml": ROOT.replace("      size: Small\n", "      other: x\n")})
    found = problems(shop, "dev")
    assert any(p.startswith("databricks.yml:8: variables.size: no value assigned to required variable size")
               for p in found), found


def test_schema_problems_name_file_line_and_field(shop):
    text = (ENDPOINT.replace("workload_size", "workload_sise").replace("permission: CAN_QUERY", "permission: CAN_RUN")
            + "  jobs:\n    nightly: {}\n")
    write(shop, {"resources/shop.yml": text,
                 "databricks.yml": ROOT.replace("mode: development", "mode: develop")})
    found = problems(shop)
    assert ("resources/shop.yml:9: resources.model_serving_endpoints.ep.config.served_entities[0].workload_sise: "
            "unknown field workload_sise (did you mean workload_size?)") in found
    assert ("resources/shop.yml:22: resources.apps.web.resources[0].serving_endpoint.permission: "
            "'CAN_RUN' is not one of: CAN_MANAGE, CAN_QUERY, CAN_VIEW") in found
    assert ("resources/shop.yml:23: resources.jobs: resource type jobs is not supported by ladle "
            "(model_serving_endpoints and apps are)") in found
    assert "databricks.yml:12: targets.dev.mode: 'develop' is not one of: development, production" in found


def test_endpoint_permission_levels_are_the_serving_ones(shop):
    write(shop, {"resources/shop.yml": ENDPOINT.replace(
        "      tags:\n", "      permissions:\n        - level: CAN_USE\n          group_name: users\n      tags:\n", 1)})
    assert ("resources/shop.yml:12: resources.model_serving_endpoints.ep.permissions[0].level: "
            "'CAN_USE' is not one of: CAN_MANAGE, CAN_QUERY, CAN_VIEW") in problems(shop)


def test_a_clean_bundle_has_no_problems(shop):
    assert problems(shop) == [] and problems(shop, "prod") == []


def test_target_selection(tmp_path):
    write(tmp_path, {"databricks.yml": "bundle: {name: t}\ntargets:\n  dev:\n  prod:\n    default: true\n"})
    assert problems(tmp_path) == [] and resolve(load(tmp_path), None, USER, {}, {}).target == "prod"
    two = ROOT.replace("    default: true\n", "")
    write(tmp_path, {"databricks.yml": two, "resources/shop.yml": ENDPOINT})
    with pytest.raises(BundleError, match="please specify target"):
        resolve(load(tmp_path), None, USER, {}, {})
    with pytest.raises(BundleError, match="qa: no such target. Available targets: dev, prod"):
        resolve(load(tmp_path), "qa", USER, {}, {})
    write(tmp_path, {"databricks.yml": "bundle:\n  name: solo\n"})
    assert resolve(load(tmp_path), None, USER, {}, {}).target == "default"


def test_invalid_yaml_and_duplicate_resources_name_their_lines(shop):
    write(shop, {"resources/more.yml": "resources:\n  model_serving_endpoints:\n    ep:\n      name: again\n"})
    with pytest.raises(BundleError) as err:
        load(shop)
    assert "resources/shop.yml:3: resources.model_serving_endpoints.ep: resource ep is already defined at " \
           "resources/more.yml:3" in str(err.value) or \
           "resources/more.yml:3: resources.model_serving_endpoints.ep: resource ep is already defined at " \
           "resources/shop.yml:3" in str(err.value)
    write(shop, {"resources/more.yml": "resources:\n  apps: [\n"})
    with pytest.raises(BundleError, match=r"resources/more.yml:3: invalid YAML"):
        load(shop)


def test_reference_cycle_is_reported(tmp_path):
    write(tmp_path, {"databricks.yml": """\
bundle: {name: c}
resources:
  model_serving_endpoints:
    a: {name: "${resources.model_serving_endpoints.b.name}"}
    b: {name: "${resources.model_serving_endpoints.a.name}"}
"""})
    with pytest.raises(BundleError, match=r"databricks.yml:4: resources.model_serving_endpoints.a.name: cannot "
                                          r"resolve \$\{resources.model_serving_endpoints.b.name\}"):
        resolve(load(tmp_path), None, USER, {}, {})


def test_app_checks_name_missing_endpoints_unknown_value_from_and_missing_requirements(tmp_path):
    from ladle.cli.bundles.checks import check
    from ladle.cli.bundles.deploy import app_source

    write(tmp_path, {"databricks.yml": """\
bundle: {name: apps}
resources:
  apps:
    web:
      name: Web_App
      source_code_path: ./web
      config:
        env:
          - {name: EP, valueFrom: serving-endpoint}
      resources:
        - name: model
          serving_endpoint: {name: gone, permission: CAN_QUERY}
        - name: warehouse
          sql_warehouse: {id: abc, permission: CAN_USE}
""", "web/app.py": "print()\n"})
    b = resolve(load(tmp_path), None, USER, {}, {})
    found = [str(d) for d in check(b, lambda name: False, lambda key: app_source(b, key))]
    assert found[0].startswith("databricks.yml:5: resources.apps.web.name: app name 'Web_App' must be 2-30")
    assert ("databricks.yml:12: resources.apps.web.resources[0].serving_endpoint.name: serving endpoint gone does "
            "not exist: create it first or declare it under resources.model_serving_endpoints") in found
    assert ("databricks.yml:9: resources.apps.web.config.env[0]: valueFrom 'serving-endpoint' names no resource "
            "of app web (its resources: model, warehouse)") in found
    assert any(f.startswith("databricks.yml:6: resources.apps.web.source_code_path: source folder ") and
               f.endswith("has no requirements.txt (ladle builds the app's environment from it)") for f in found)
    assert ("databricks.yml:13: resources.apps.web.resources[1]: resource warehouse: ladle apps take exactly one "
            "serving_endpoint or secret (found: sql_warehouse)") in found
    assert len(found) == 5


def test_a_user_supplied_schema_is_checked_too(shop, tmp_path, monkeypatch):
    """LADLE_BUNDLE_SCHEMA (e.g. `databricks bundle schema`'s output, Go-style \\p{L} patterns)."""
    own = tmp_path / "schema.json"
    own.write_text(json.dumps({"type": "object", "properties": {"bundle": {"type": "object", "properties": {
        "name": {"type": "string", "pattern": r"^\p{Lu}\p{L}*$"}}}}}))
    monkeypatch.setenv("LADLE_BUNDLE_SCHEMA", str(own))
    assert problems(shop) == [r"databricks.yml:2: bundle.name: 'shop' does not match '^\\p{Lu}\\p{L}*$'"]
    write(shop, {"databricks.yml": ROOT.replace("name: shop", "name: Shöp")})
    assert problems(shop) == []


def test_bundle_permissions_reach_every_resource_in_its_own_levels(shop):
    write(shop, {"databricks.yml": ROOT + """\
permissions:
  - {level: CAN_RUN, group_name: analysts}
  - {level: CAN_VIEW, user_name: "${workspace.current_user.userName}"}
  - {level: CAN_MANAGE, group_name: admins}
"""})
    assert problems(shop) == []
    b = resolve(load(shop), None, USER, {}, {})
    assert b.resources["model_serving_endpoints"]["ep"]["permissions"] == [
        {"level": "CAN_QUERY", "group_name": "analysts"}, {"level": "CAN_VIEW", "user_name": USER},
        {"level": "CAN_MANAGE", "group_name": "admins"}]
    assert b.resources["apps"]["web"]["permissions"] == [  # apps have no CAN_RUN
        {"level": "CAN_USE", "user_name": USER}, {"level": "CAN_MANAGE", "group_name": "admins"}]


def test_a_target_merges_app_resources_by_name(shop):
    write(shop, {"databricks.yml": ROOT + """\
  staging:
    resources:
      apps:
        web:
          resources:
            - name: model
              serving_endpoint: {permission: CAN_MANAGE}
            - name: token
              secret: {scope: s, key: k, permission: READ}
"""})
    assert problems(shop, "staging", {"size": "Small"}) == []
    resources = resolve(load(shop), "staging", USER, {"size": "Small"}, {}).resources["apps"]["web"]["resources"]
    assert resources == [{"name": "model", "serving_endpoint": {"name": "scorer", "permission": "CAN_MANAGE"}},
                         {"name": "token", "secret": {"scope": "s", "key": "k", "permission": "READ"}}]
