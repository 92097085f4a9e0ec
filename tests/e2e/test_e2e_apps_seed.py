"""The seed flow of apps, end to end with the real server, the `ladle` CLI as a subprocess and
real app processes: an endpoint (the shared `iris`); `ladle apps init --features serving`;
`ladle bundle deploy`; `ladle bundle run app`; a GET of the app's URL answers with the
endpoint's prediction, which the scaffold's own (unedited) code got through databricks-sdk with
the app's OAuth credentials. A copy whose databricks.yml lacks the resource (app.yaml then names
the endpoint itself) is refused by the endpoint and shows PERMISSION_DENIED with its fix. `ladle apps`
reads the app (get, logs); `ladle bundle destroy` leaves no app, principal or grant behind.
(`ladle apps deploy` of a local folder is covered by the unit tier against a recording server.)"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import yaml

from e2e_support import COLUMNS, SERVER_ARGV

APP = "seed-app"
DENIED = "seed-denied"


def ladle(env: dict[str, str], cwd: Path, *args: str, timeout: float = 300.0) -> subprocess.CompletedProcess:
    p = subprocess.run([*SERVER_ARGV, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"ladle {' '.join(args)}: exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p


def ladle_each(env: dict[str, str], folders: list[Path], *args: str, timeout: float = 300.0) -> list[str]:
    """The same command in each folder at once (the two apps build and start side by side)."""
    procs = [subprocess.Popen([*SERVER_ARGV, *args], env=env, cwd=f, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for f in folders]
    outs = []
    for folder, proc in zip(folders, procs):
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, f"ladle {' '.join(args)} in {folder.name}: exit {proc.returncode}\n{out}\n{err}"
        outs.append(out)
    return outs


def app_url(run_output: str) -> str:
    match = re.search(r"You can access the app at (\S+)", run_output)
    assert match, run_output
    return match.group(1)


def without_resource(project: Path, endpoint: str) -> None:
    """The copy: databricks.yml declares no resource; app.yaml sets the endpoint's name itself."""
    bundle = yaml.safe_load((project / "databricks.yml").read_text())
    bundle["bundle"]["name"] = DENIED
    the_app = bundle["resources"]["apps"]["app"]
    the_app["name"] = DENIED
    del the_app["resources"], bundle["variables"], bundle["targets"]["default"]["variables"]
    (project / "databricks.yml").write_text(yaml.safe_dump(bundle))
    spec = yaml.safe_load((project / "app.yaml").read_text())
    spec["env"] = [{"name": "DATABRICKS_SERVING_ENDPOINT_NAME", "value": endpoint}]
    (project / "app.yaml").write_text(yaml.safe_dump(spec))


def test_seed_flow(databricks_env, admin, iris_endpoint, v1_model, tmp_path: Path) -> None:
    env, endpoint = databricks_env, iris_endpoint["name"]
    ladle(env, tmp_path, "apps", "init", "--name", APP, "--features", "serving",
          "--set", f"serving.serving-endpoint.name={endpoint}", "--run", "none")
    project = tmp_path / APP
    denied_project = tmp_path / DENIED
    shutil.copytree(project, denied_project)
    without_resource(denied_project, endpoint)
    try:
        ladle_each(env, [project, denied_project], "bundle", "deploy")
        url, denied_url = map(app_url, ladle_each(env, [project, denied_project], "bundle", "run", "app"))

        # the scaffold asked the endpoint with one row built from the model's signature
        expected = v1_model.predict(pd.DataFrame([{c: 1.0 for c in COLUMNS}])).tolist()
        answer = admin.get(url + "api/prediction")
        assert answer.status_code == 200, answer.text
        assert answer.json()["response"]["predictions"] == expected
        page = admin.get(url)
        assert page.status_code == 200 and "Prediction" in page.text and endpoint in page.text

        # refused: the endpoint answers the app's own principal PERMISSION_DENIED; the app shows it
        # with the fix (declare the resource with CAN_QUERY)
        refused = admin.get(denied_url + "api/prediction")
        assert refused.status_code == 403, refused.text
        assert refused.json()["error_code"] == "PERMISSION_DENIED"
        assert "permission: CAN_QUERY" in refused.json()["hint"]
        page = admin.get(denied_url)
        assert page.status_code == 403 and "PERMISSION_DENIED" in page.text
        assert "CAN_QUERY" in page.text and "Prediction" not in page.text

        got = json.loads(ladle(env, tmp_path, "apps", "get", APP).stdout)
        assert got["url"] == url and got["compute_status"]["state"] == "ACTIVE"
        assert got["resources"][0]["serving_endpoint"] == {"name": endpoint, "permission": "CAN_QUERY"}
        assert got["active_deployment"]["status"]["state"] == "SUCCEEDED"
        assert "Uvicorn running" in ladle(env, tmp_path, "apps", "logs", APP, "--search", "Uvicorn").stdout
    finally:
        for folder in (project, denied_project):
            subprocess.run([*SERVER_ARGV, "bundle", "destroy", "--auto-approve"], env=env, cwd=folder,
                           capture_output=True, text=True, timeout=300)

    for name in (APP, DENIED):
        assert admin.get(f"/api/2.0/apps/{name}").status_code == 404
        sps = admin.get("/api/2.0/preview/scim/v2/ServicePrincipals",
                        params={"filter": f'displayName eq "{name}"'}).json()
        assert not sps.get("Resources"), sps
    acl = admin.get(f"/api/2.0/permissions/serving-endpoints/{iris_endpoint['id']}").json()
    assert got["service_principal_client_id"] not in json.dumps(acl)
    assert admin.get(f"/api/2.0/serving-endpoints/{endpoint}").status_code == 200   # not the bundle's to delete

