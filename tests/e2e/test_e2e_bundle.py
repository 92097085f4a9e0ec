"""`ladle bundle` as a subprocess against the real server: an endpoint bundle with targets and
variables is validated, deployed (with the development-mode name prefix), deployed again with
nothing to do, and destroyed exactly (updates field by field: tests/unit/test_bundle_deploy.py)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from e2e_support import SERVER_ARGV

BUNDLE = """\
bundle:
  name: iris-bundle
include:
  - resources/*.yml
variables:
  version:
    description: the iris version to serve
    default: "1"
targets:
  dev:
    mode: development
    default: true
  prod: {}
"""
ENDPOINT = """\
resources:
  model_serving_endpoints:
    iris:
      name: bundle-iris
      config:
        served_entities:
          - entity_name: main.default.iris
            entity_version: ${var.version}
            workload_size: Small
            scale_to_zero_enabled: false
      tags:
        - key: target
          value: ${bundle.target}
"""


def ladle(env: dict[str, str], cwd: Path, *args: str, timeout: float = 180.0) -> subprocess.CompletedProcess:
    return subprocess.run([*SERVER_ARGV, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def ok(p: subprocess.CompletedProcess) -> str:
    assert p.returncode == 0, f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p.stdout


@pytest.fixture()
def endpoint_bundle(tmp_path: Path) -> Path:
    root = tmp_path / "bundle"
    (root / "resources").mkdir(parents=True)
    (root / "databricks.yml").write_text(BUNDLE)
    (root / "resources" / "iris.yml").write_text(ENDPOINT)
    return root


def test_bundle_endpoint_deploy_redeploy_destroy(databricks_env, models, workspace, endpoint_bundle):
    env, root = databricks_env, endpoint_bundle
    me = workspace.current_user.me().user_name
    name = "dev_" + re.sub(r"_+", "_", re.sub(r"[^a-z0-9]", "_", me.split("@")[0].lower())).strip("_") + "_bundle-iris"

    out = ok(ladle(env, root, "bundle", "validate"))
    assert "Target: dev" in out and "Validation OK!" in out

    started = time.monotonic()
    out = ok(ladle(env, root, "bundle", "deploy", "--var", "version=2"))
    assert re.search(rf"create\s+model_serving_endpoints\.iris {re.escape(name)}", out), out
    assert "Deployment complete!" in out
    ep = workspace.serving_endpoints.get(name)
    assert ep.state.ready.value == "READY"
    assert [e.entity_version for e in ep.config.served_entities] == ["2"]
    assert {t.key: t.value for t in ep.tags or []} == {"target": "dev"}
    state = json.loads((root / ".databricks" / "bundle" / "dev" / "resources.json").read_text())
    assert state["resources"]["model_serving_endpoints"]["iris"]["id"] == ep.id
    deployed_s = time.monotonic() - started

    out = ok(ladle(env, root, "bundle", "deploy", "--var", "version=2"))
    assert "No changes" in out and "create" not in out and "update" not in out
    again = workspace.serving_endpoints.get(name)
    assert again.config.config_version == ep.config.config_version

    summary = ok(ladle(env, root, "bundle", "summary"))
    assert f"Name: {name}" in summary and f"/ui/endpoints/{name}" in summary

    refused = ladle(env, root, "bundle", "destroy")
    assert refused.returncode != 0 and "--auto-approve" in refused.stderr
    assert workspace.serving_endpoints.get(name).name == name  # nothing deleted

    out = ok(ladle(env, root, "bundle", "destroy", "--auto-approve"))
    assert re.search(rf"delete\s+model_serving_endpoints\.iris {re.escape(name)}", out) and "Destroy complete!" in out
    assert name not in [e.name for e in workspace.serving_endpoints.list()]
    assert not (root / ".databricks" / "bundle" / "dev" / "resources.json").exists()
    assert deployed_s < 120


def test_bundle_validate_names_file_line_and_field(databricks_env, endpoint_bundle):
    root = endpoint_bundle
    text = ENDPOINT.replace("workload_size: Small", "workload_sise: Small").replace(
        "${var.version}", "${var.versoin}")
    (root / "resources" / "iris.yml").write_text(text)
    p = ladle(databricks_env, root, "bundle", "deploy", "-t", "prod")
    assert p.returncode != 0 and "Traceback" not in p.stderr
    assert ("resources/iris.yml:9: resources.model_serving_endpoints.iris.config.served_entities[0]"
            ".workload_sise: unknown field workload_sise (did you mean workload_size?)") in p.stderr
    assert ("resources/iris.yml:8: resources.model_serving_endpoints.iris.config.served_entities[0]"
            ".entity_version: reference does not exist: ${var.versoin}") in p.stderr
    assert not (root / ".databricks").exists()
