"""Schema fuzz: schemathesis drives a real ladle server from the OpenAPI document ladle serves
(`GET /api/2.0/ladle/openapi.json`) and finds no 5xx and no answer outside the documented
shape: every status, content type, header and body conforms, schema-violating requests are
refused with a 4xx, unsupported methods answer 405 with `Allow`, and auth is never ignored.

It runs on its own server (it creates, changes and deletes tokens, groups, endpoints and
secrets, which the shared `server` fixture's tests rely on), with no foundation endpoints.
Seeded objects give the path parameters something real to hit: an external-model endpoint
(no replicas, no builds), a group, a registered model (and MLflow's Default experiment), a
secret scope. A few operations whose non-admin path differs run as an ordinary user. DELETE
operations are pinned to objects made to be deleted, so the run cannot revoke its own token
or delete what the other operations aim at. `positive_data_acceptance` is left out: ladle rightly answers 400 to some
schema-valid requests (a model that is not in the registry, a built-in group's name, a
relative path), which no schema can express.

Reproduce a failure: the output names `st replay <id>`; LADLE_FUZZ_SEED picks another seed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from e2e_support import LadleServer

pytestmark = pytest.mark.timeout(300)

SEED = int(os.environ.get("LADLE_FUZZ_SEED", "20261204"))
# Every check but these (set in the config file: a check named on the command line would
# override the per-operation settings below). The stateful ones need the stateful phase;
# object_level_authorization needs a second user's credentials.
OFF = ("positive_data_acceptance", "use_after_free", "ensure_resource_availability",
       "object_level_authorization")
EXTERNAL = {"name": "m", "provider": "custom", "task": "llm/v1/chat",
            "custom_provider_config": {"custom_provider_url": "http://127.0.0.1:9/v1",
                                       "bearer_token_auth": {"token_plaintext": "not-a-real-key"}}}


def _external_endpoint(name: str) -> dict:
    return {"name": name, "config": {"served_entities": [{"name": "ext", "external_model": EXTERNAL}]}}


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory):
    srv = LadleServer(tmp_path_factory.mktemp("ladle-fuzz"), "dapi-fuzz-admin-" + secrets.token_hex(8),
                      extra_env={"LADLE_FOUNDATION_ENDPOINTS": "false", "LADLE_WARM_SPARES": "0"})
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def seeded(fuzz_server: LadleServer) -> dict[str, str]:
    with fuzz_server.client() as c:
        def ok(r: httpx.Response) -> dict:
            assert r.status_code == 200, r.text
            return r.json()

        eid = ok(c.post("/api/2.0/serving-endpoints", json=_external_endpoint("fuzz")))["id"]
        ok(c.post("/api/2.0/serving-endpoints", json=_external_endpoint("fuzz-doomed")))
        ok(c.post("/api/2.0/ladle/groups", json={"display_name": "fuzz-group"}))
        ok(c.post("/api/2.0/ladle/groups/fuzz-group/members", json={"user_name": "fuzz-user"}))
        ok(c.post("/api/2.0/ladle/groups", json={"display_name": "fuzz-doomed"}))
        doomed_token = ok(c.post("/api/2.0/token/create", json={"comment": "fuzz: to be revoked"}))
        user_token = ok(c.post("/api/2.0/token-management/on-behalf-of/tokens", json={"user_name": "fuzz-user"}))
        deleter_token = ok(c.post("/api/2.0/token-management/on-behalf-of/tokens",
                                  json={"user_name": "fuzz-deleter"}))
        ok(c.patch(f"/api/2.0/permissions/serving-endpoints/{eid}",
                   json={"access_control_list": [{"user_name": "fuzz-user", "permission_level": "CAN_MANAGE"}]}))
        ok(c.post("/api/2.0/mlflow/registered-models/create", json={"name": "fuzz-model"}))
        ok(c.post("/api/2.0/secrets/scopes/create", json={"scope": "fuzz-scope"}))
        ok(c.post("/api/2.0/secrets/put", json={"scope": "fuzz-scope", "key": "k", "string_value": "v"}))
        scim = "/api/2.0/preview/scim/v2"
        scim_ids = {
            "user_id": ok(c.get(scim + "/Users", params={"filter": 'userName eq "fuzz-user"'}))["Resources"][0]["id"],
            "doomed_user_id": ok(c.post(scim + "/Users", json={"userName": "fuzz-doomed-user"}))["id"],
            "doomed_sp_id": ok(c.post(scim + "/ServicePrincipals", json={"displayName": "fuzz-doomed"}))["id"],
            "group_id": ok(c.get(scim + "/Groups",
                                 params={"filter": 'displayName eq "fuzz-group"'}))["Resources"][0]["id"],
            "doomed_group_id": ok(c.post(scim + "/Groups", json={"displayName": "fuzz-doomed-scim"}))["id"]}
    return {"endpoint_id": eid, "doomed_token_id": doomed_token["token_info"]["token_id"],
            "user_token": user_token["token_value"], "deleter_token": deleter_token["token_value"],
            **scim_ids}


def _config(seeded: dict[str, str]) -> str:
    """schemathesis.toml: which operations get which seeded path parameters."""
    pinned: dict[str, dict[str, str]] = {
        **{op: {"path.name": "fuzz"} for op in (
            "getServingEndpoint", "updateServingEndpointConfig", "putAiGateway", "putRateLimits",
            "patchServingEndpointTags", "updateNotifications", "patchTelemetryConfig", "exportMetrics",
            "getServingEndpointOpenApi", "getMetricsHistory")},
        "getServedModelLogs": {"path.name": "fuzz", "path.served": "ext"},
        "getServedModelBuildLogs": {"path.name": "fuzz", "path.served": "ext"},
        **{op: {"path.id": seeded["endpoint_id"]} for op in (
            "getServingEndpointPermissionLevels", "getServingEndpointPermissions",
            "setServingEndpointPermissions", "updateServingEndpointPermissions")},
        **{f"{verb}Experiment{what}": {"path.id": "0"} for verb, what in (    # MLflow's Default
            ("get", "PermissionLevels"), ("get", "Permissions"), ("set", "Permissions"), ("update", "Permissions"))},
        **{f"{verb}RegisteredModel{what}": {"path.id": "fuzz-model"} for verb, what in (
            ("get", "PermissionLevels"), ("get", "Permissions"), ("set", "Permissions"), ("update", "Permissions"))},
        "addGroupMember": {"path.name": "fuzz-group"},
        "removeGroupMember": {"path.name": "fuzz-group"},
        # What a DELETE may remove; without these it would reuse ids it read from list answers
        # (schemathesis does) and revoke the admin token the run authenticates with.
        "deleteServingEndpoint": {"path.name": "fuzz-doomed"},
        "deleteGroup": {"path.name": "fuzz-doomed"},
        "revokeToken": {"path.token_id": seeded["doomed_token_id"]},
        "getUser": {"path.id": seeded["user_id"]},
        "getScimGroup": {"path.id": seeded["group_id"]},
        "patchScimGroup": {"path.id": seeded["group_id"]},
        "deleteUser": {"path.id": seeded["doomed_user_id"]},
        "deleteServicePrincipal": {"path.id": seeded["doomed_sp_id"]},
        "deleteScimGroup": {"path.id": seeded["doomed_group_id"]},
    }
    blocks = ["[checks]\n" + "".join(f"{c}.enabled = false\n" for c in OFF)]
    for op, params in pinned.items():
        inline = ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in params.items())
        blocks.append(f'[[operations]]\ninclude-operation-id = "{op}"\nparameters = {{ {inline} }}\n')
    # Operations whose non-admin path differs, run as an ordinary user (usage: only the
    # endpoints it manages; tokens: its own, and none for others).
    for op in ("getUsage", "createOboToken"):
        blocks.append(f'[[operations]]\ninclude-operation-id = "{op}"\n'
                      f'headers = {{ "Authorization" = "Bearer {seeded["user_token"]}" }}\n')
    # POST /token/delete takes the id in its body (no pinning): run as a user of its own, who
    # may revoke only its own token, whose id no answer shows the run.
    blocks.append('[[operations]]\ninclude-operation-id = "deleteOwnToken"\n'
                  f'headers = {{ "Authorization" = "Bearer {seeded["deleter_token"]}" }}\n')
    # `/serving-endpoints/pt` is also `/serving-endpoints/{name}` for an endpoint named "pt":
    # its 405 rightly allows GET and DELETE too.
    blocks.append('[[operations]]\ninclude-operation-id = "createProvisionedThroughputEndpoint"\n'
                  "checks.allow_header_conformance.enabled = false\n")
    return "\n".join(blocks)


def test_schema_fuzz_finds_no_server_error_and_no_undocumented_answer(
        fuzz_server: LadleServer, seeded: dict[str, str], tmp_path: Path) -> None:
    with fuzz_server.client() as c:
        r = c.get("/api/2.0/ladle/openapi.json")
        assert r.status_code == 200, r.text
        doc = r.content
        (tmp_path / "openapi.json").write_bytes(doc)
        assert httpx.get(fuzz_server.url + "/api/2.0/ladle/openapi.json").status_code == 401
    (tmp_path / "schemathesis.toml").write_text(_config(seeded))
    log_mark = len(fuzz_server.output())

    started = time.monotonic()
    cmd = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(tmp_path / "schemathesis.toml"),
           "--no-color", "run", str(tmp_path / "openapi.json"), "--url", fuzz_server.url,
           "--header", f"Authorization: Bearer {fuzz_server.admin_token}",
           # coverage: every boundary and wrong-type value of every field, deterministic (~3,400
           # requests); fuzzing: a few random bodies per operation. One worker: schemathesis
           # 4.32's coverage phase can fail internally with several.
           "--phases", "coverage,fuzzing", "--max-examples", "3", "--workers", "1",
           "--seed", str(SEED), "--generation-database", "none", "--request-timeout", "30"]
    run = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    took = time.monotonic() - started
    out = run.stdout + run.stderr
    summary = out[out.find("=== FAILURES") if "=== FAILURES" in out else -3000:]
    assert run.returncode == 0, f"schemathesis found problems (seed {SEED}, {took:.0f}s):\n{summary[:12000]}"
    # Every operation of the document was exercised.
    operations = sum(len(methods) for methods in json.loads(doc)["paths"].values())
    tested = re.search(r"Tested: (\d+)", out)
    assert tested and int(tested.group(1)) == operations, out[-3000:]
    print(f"schema fuzz: {took:.1f}s; " + " ".join(out.strip().splitlines()[-1].split()))

    # Every answer was a client error or a success, and the server logged no internal error.
    logged = fuzz_server.output()[log_mark:]
    assert "internal error on" not in logged and "Traceback" not in logged, logged[-4000:]
    # Nothing was left building or running: the fuzzed creates never got past validation.
    assert fuzz_server.replica_procs() == []
    with fuzz_server.client() as c:
        endpoints = c.get("/api/2.0/serving-endpoints").json()["endpoints"]
        assert all(s.get("external_model") for e in endpoints for s in e["config"]["served_entities"]), endpoints
        assert c.get("/api/2.0/serving-endpoints/fuzz").status_code == 200
