"""`ladle bundle` commands against a recording HTTP server: what validate prints, a problem found
on the server named by file and line with nothing written, and destroy's confirmation."""

from __future__ import annotations

import json
from pathlib import Path

try:
    from .cli_fakes import TOKEN, RecordingServer, Reply, _recording_server, base_env, run, server  # noqa: F401
except ImportError:  # tests/unit is not a package
    from cli_fakes import TOKEN, RecordingServer, Reply, _recording_server, base_env, run, server  # noqa: F401

ME = "/api/2.0/preview/scim/v2/Me"
YML = """\
bundle:
  name: shop
resources:
  apps:
    web:
      name: shop-web
      source_code_path: ./app
      resources:
        - name: model
          serving_endpoint: {name: scorer, permission: CAN_QUERY}
"""


def bundle_cli(args: list[str], server: RecordingServer, root: Path):
    from ladle.cli.bundle import bundle

    env = base_env(root, DATABRICKS_HOST=server.url, DATABRICKS_TOKEN=TOKEN, DATABRICKS_BUNDLE_ROOT=str(root))
    return run(bundle, args, env)


def make_bundle(tmp_path: Path) -> Path:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "requirements.txt").write_text("")
    (tmp_path / "databricks.yml").write_text(YML)
    return tmp_path


def test_validate_prints_the_target_and_workspace(server: RecordingServer, tmp_path: Path) -> None:
    root = make_bundle(tmp_path)
    server.on("GET", ME, Reply(body={"userName": "jane@example.com"}))
    server.on("GET", "/api/2.0/serving-endpoints/scorer", Reply(body={"name": "scorer"}))
    result = bundle_cli(["validate"], server, root)
    assert result.exit_code == 0, result.output
    assert result.stdout == ("Name: shop\nTarget: default\nWorkspace:\n  User: jane@example.com\n"
                             "  Path: /Workspace/Users/jane@example.com/.bundle/shop/default\n\nValidation OK!\n")
    as_json = json.loads(bundle_cli(["validate", "-o", "json"], server, root).stdout)
    assert as_json["resources"]["apps"]["web"]["resources"][0]["serving_endpoint"]["name"] == "scorer"


def test_deploy_refuses_an_app_whose_endpoint_does_not_exist(server: RecordingServer, tmp_path: Path) -> None:
    root = make_bundle(tmp_path)
    server.on("GET", ME, Reply(body={"userName": "jane@example.com"}))
    result = bundle_cli(["deploy"], server, root)
    assert result.exit_code == 1
    assert result.stderr == ("Error: databricks.yml:10: resources.apps.web.resources[0].serving_endpoint.name: "
                             "serving endpoint scorer does not exist: create it first or declare it under "
                             "resources.model_serving_endpoints\n")
    assert {c.method for c in server.calls()} == {"GET"} and not (root / ".databricks").exists()


def test_bad_var_is_named(server: RecordingServer, tmp_path: Path) -> None:
    result = bundle_cli(["validate", "--var", "novalue"], server, make_bundle(tmp_path))
    assert result.exit_code == 2 and "'novalue': expected NAME=VALUE" in result.stderr


def test_destroy_without_a_terminal_needs_auto_approve(server: RecordingServer, tmp_path: Path) -> None:
    root = make_bundle(tmp_path)
    state = root / ".databricks" / "bundle" / "default" / "resources.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"version": 1, "bundle": "shop", "target": "default", "resources": {
        "apps": {"web": {"name": "shop-web", "id": "shop-web", "spec": None}}}}))
    server.on("GET", ME, Reply(body={"userName": "jane@example.com"}))
    server.on("GET", "/api/2.0/apps/shop-web", Reply(body={"name": "shop-web"}))
    result = bundle_cli(["destroy"], server, root)
    assert result.exit_code == 1
    assert "delete   apps.web shop-web" in result.stdout
    assert "please specify --auto-approve" in result.stderr
    assert {c.method for c in server.calls()} == {"GET"} and state.is_file()


def test_a_bundle_for_another_server_is_refused(server: RecordingServer, tmp_path: Path) -> None:
    root = make_bundle(tmp_path)
    (root / "databricks.yml").write_text(YML + "targets:\n  dev:\n    workspace:\n      host: https://other.example.com/\n")
    server.on("GET", ME, Reply(body={"userName": "jane@example.com"}))
    server.on("GET", "/api/2.0/serving-endpoints/scorer", Reply(body={"name": "scorer"}))
    result = bundle_cli(["deploy"], server, root)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: databricks.yml:14: workspace.host: the bundle's workspace.host "
                                    f"https://other.example.com/ is not the server you are signed in to ({server.url})")
    assert {c.method for c in server.calls()} == {"GET"}
    (root / "databricks.yml").write_text(YML + f"targets:\n  dev:\n    workspace:\n      host: {server.url}/\n")
    assert bundle_cli(["validate"], server, root).exit_code == 0
