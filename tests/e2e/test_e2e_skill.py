"""The Databricks "Model Serving Endpoints" skill, walked in its order on the shared server with
the commands exactly as it writes them (`databricks` -> `ladle`, placeholders filled,
`--profile` naming a profile of the ~/.databrickscfg this test writes in a temporary HOME):
discovery, create of each endpoint type, `--no-wait` then polling `get`, query (unary and
`--stream`), `get-open-api`, every row of its "Other commands" table and every row of its
troubleshooting table. Foundation models are discovered in Unity Catalog's `system.ai` with the
databricks-sdk, as the skill says.

Cost: the iris model the session already registered, the packaged all-MiniLM-L6-v2 (one
replica: the provisioned-throughput endpoint; the pay-per-token one scales to zero and is not
queried) and an external model pointed at a fake OpenAI upstream run here.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from e2e_support import SERVER_ARGV, LadleServer, wait_for
from llm_fixtures import FakeUpstream

pytest.importorskip("transformers", reason="the foundation endpoints need the llm extra")

CUSTOM, PPT, PT, EXTERNAL = "iris-ep", "skill-ppt", "skill-pt", "skill-chat"
CHAT_BODY = '{"messages": [{"role": "user", "content": "Hello, how are you?"}]}'
SKILL_CREATE = """{
    "served_entities": [{
      "entity_name": "main.default.iris",
      "entity_version": "1",
      "min_provisioned_throughput": 0,
      "max_provisioned_throughput": 0,
      "workload_size": "Small"
    }],
    "traffic_config": {
      "routes": [{
        "served_entity_name": "iris-1",
        "traffic_percentage": 100
      }]
    }
  }"""


def _openai(path, headers, body):
    if body.get("stream"):
        def chunk(delta, finish=None):
            return json.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": body["model"],
                               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        return 200, {}, [chunk({"role": "assistant", "content": "I am "}), chunk({"content": "fine."}),
                         chunk({}, "stop"), "[DONE]"]
    return 200, {}, {"id": "c1", "object": "chat.completion", "created": 1, "model": body["model"],
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": "I am fine, thanks."},
                                  "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 6, "completion_tokens": 4, "total_tokens": 10}}


def _external(url: str, model: str) -> str:
    return json.dumps({"served_entities": [{"name": "chat", "external_model": {
        "name": model, "provider": "openai", "task": "llm/v1/chat",
        "openai_config": {"openai_api_key_plaintext": "sk-skill-test", "openai_api_base": url}}}]})


class Cli:
    def __init__(self, home: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}
        self.env["HOME"] = str(home)

    def __call__(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*SERVER_ARGV, *args], env=self.env, capture_output=True, text=True, timeout=300)

    def ok(self, *args: str) -> str:
        p = self(*args)
        assert p.returncode == 0, f"{args}: exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
        return p.stdout

    def json(self, *args: str):
        return json.loads(self.ok(*args))

    def fails(self, *args: str) -> str:
        p = self(*args)
        assert p.returncode != 0, f"{args} succeeded: {p.stdout}"
        return p.stderr


def _sdk(home: Path, profile: str):
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    return WorkspaceClient(config=Config(profile=profile, config_file=str(home / ".databrickscfg"),
                                         retry_timeout_seconds=30))


def test_the_model_serving_skill_in_order(server: LadleServer, admin, models, tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    sp = admin.post("/api/2.0/token-management/on-behalf-of/tokens", json={"application_id": "skill-app"})
    assert sp.status_code == 200, sp.text
    (home / ".databrickscfg").write_text(
        f"[seed]\nhost = {server.url}\ntoken = {server.admin_token}\n\n"
        f"[app]\nhost = {server.url}\ntoken = {sp.json()['token_value']}\n")
    ladle, seed = Cli(home), ("--profile", "seed")
    alias = {"name": "main.default.iris", "alias": "skill", "version": "1"}
    assert admin.post("/api/2.0/mlflow/registered-models/alias", json=alias).status_code == 200
    upstream = FakeUpstream(_openai).__enter__()
    try:
        # -- before anything: no profile chosen, no credentials -----------------------------------
        err = ladle.fails("serving-endpoints", "list")
        assert "cannot configure default credentials" in err and "use --profile" in err
        assert "authenticate first" in err

        # -- discovery --------------------------------------------------------------------------
        group_help = ladle.ok("serving-endpoints", "-h")
        for sub in ("create", "query", "get-open-api", "build-logs", "put-ai-gateway", "get-permissions"):
            assert f"  {sub} " in group_help, sub
        assert "JSON body (--json):" in ladle.ok("serving-endpoints", "query", "-h")
        create_help = ladle.ok("serving-endpoints", "create", "-h")
        assert "  config.served_entities[].entity_name  string" in create_help
        assert "Example, external model" in create_help and "Example, provisioned throughput" in create_help

        w, w_app = _sdk(home, "seed"), _sdk(home, "app")
        foundation = {m.full_name for m in w.registered_models.list(catalog_name="system", schema_name="ai")}
        assert "system.ai.all_minilm_l6_v2" in foundation
        assert [v.version for v in w.model_versions.list("system.ai.all_minilm_l6_v2")] == [1]
        assert "main.default.iris" in {m.full_name for m in w.registered_models.list(
            catalog_name="main", schema_name="default")}
        iris = w.registered_models.get("main.default.iris", include_aliases=True)
        assert ("skill", 1) in [(a.alias_name, a.version_num) for a in iris.aliases]
        assert {1, 2} <= {v.version for v in w.model_versions.list("main.default.iris")}
        assert w.model_versions.get_by_alias("main.default.iris", "skill").version == 1
        # the registry's permissions apply: the app's principal may not read iris
        assert "main.default.iris" not in {m.full_name for m in w_app.registered_models.list(
            catalog_name="main", schema_name="default")}
        assert "system.ai.all_minilm_l6_v2" in {m.full_name for m in w_app.registered_models.list(
            catalog_name="system", schema_name="ai")}

        # -- create: custom model, the skill's body, --no-wait then poll get ---------------------
        created = ladle.json("serving-endpoints", "create", CUSTOM, "--json", SKILL_CREATE, "--no-wait", *seed)
        early = admin.post(f"/serving-endpoints/{CUSTOM}/invocations", json={"inputs": [[1, 2, 3, 4]]})
        assert created["name"] == CUSTOM and created["state"]["ready"] == "NOT_READY"
        # troubleshooting: a query while it provisions is a 404 saying to poll get (and build-logs)
        assert early.status_code == 404 and early.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST", early.text
        assert f"`serving-endpoints get {CUSTOM}`" in early.json()["message"]
        assert f"`serving-endpoints build-logs {CUSTOM} iris-1`" in early.json()["message"]
        pt_created = ladle.json("serving-endpoints", "create", PT, "--json", json.dumps({"served_entities": [{
            "entity_name": "system.ai.all_minilm_l6_v2", "entity_version": "1", "provisioned_model_units": 1}]}),
            "--no-wait", *seed)
        assert pt_created["name"] == PT
        ppt = ladle.json("serving-endpoints", "create", PPT, "--json", json.dumps({"served_entities": [{
            "entity_name": "system.ai.all_minilm_l6_v2", "entity_version": "1", "workload_size": "Small",
            "scale_to_zero_enabled": True}]}), "--no-wait", *seed)
        assert ppt["name"] == PPT
        # external: the CLI waits by default
        ext = ladle.json("serving-endpoints", "create", EXTERNAL, "--json", _external(upstream.url, "gpt-skill"), *seed)
        assert ext["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"}
        for name in (CUSTOM, PT, PPT):
            wait_for(lambda: ladle.json("serving-endpoints", "get", name, *seed)["state"]["ready"] == "READY",
                     240, interval=0.5, what=f"{name} READY")
        ppt = ladle.json("serving-endpoints", "get", PPT, *seed)
        assert ppt["config"]["served_entities"][0]["foundation_model"]["name"] == "system.ai.all_minilm_l6_v2"

        # -- query ------------------------------------------------------------------------------
        answer = ladle.json("serving-endpoints", "query", EXTERNAL, "--json", CHAT_BODY, *seed)
        assert answer["choices"][0]["message"]["content"] == "I am fine, thanks."
        assert upstream.requests[-1][2]["messages"] == json.loads(CHAT_BODY)["messages"]
        assert ladle.ok("serving-endpoints", "query", EXTERNAL, "--json", CHAT_BODY, "--stream", *seed) == "I am fine.\n"
        doc = json.loads(ladle.ok("serving-endpoints", "get-open-api", CUSTOM, *seed))
        assert doc["openapi"].startswith("3.1")
        assert f"/serving-endpoints/{CUSTOM}/served-models/iris-1/invocations" in doc["paths"]
        predictions = ladle.json("serving-endpoints", "query", CUSTOM, "--json", json.dumps(
            {"dataframe_split": {"columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
                                 "data": [[5.1, 3.5, 1.4, 0.2]]}}), *seed)["predictions"]
        assert predictions == [0]
        embedding = ladle.json("serving-endpoints", "query", PT, "--json", '{"input": "hello"}', *seed)
        assert len(embedding["data"][0]["embedding"]) == 384

        # -- other commands ---------------------------------------------------------------------
        listed = {e["name"] for e in ladle.json("serving-endpoints", "list", *seed)}
        assert {CUSTOM, PPT, PT, EXTERNAL} <= listed
        got = ladle.json("serving-endpoints", "get", CUSTOM, *seed)
        ep_id, served = got["id"], got["config"]["served_entities"][0]["name"]
        assert len(ep_id) == 32 and served == "iris-1" and got["state"]["ready"] == "READY"
        updated = ladle.json("serving-endpoints", "update-config", EXTERNAL, "--json",
                             _external(upstream.url, "gpt-skill-2"), *seed)
        assert updated["config"]["served_entities"][0]["external_model"]["name"] == "gpt-skill-2"
        gateway = ladle.json("serving-endpoints", "put-ai-gateway", EXTERNAL, "--json", json.dumps({
            "rate_limits": [{"calls": 1, "key": "user", "renewal_period": "minute"}],
            "usage_tracking_config": {"enabled": True}}), *seed)
        assert gateway["rate_limits"][0]["calls"] == 1
        tags = ladle.json("serving-endpoints", "patch", EXTERNAL, "--json",
                          '{"add_tags": [{"key": "team", "value": "ml"}]}', *seed)
        assert {"key": "team", "value": "ml"} in tags["tags"]
        assert "main.default.iris" in ladle.json("serving-endpoints", "build-logs", CUSTOM, served, *seed)["logs"]
        assert ladle.json("serving-endpoints", "logs", CUSTOM, served, *seed)["logs"].strip()
        metrics = ladle.ok("serving-endpoints", "export-metrics", CUSTOM, *seed)
        assert "# TYPE" in metrics and "iris-1" in metrics
        acl = ladle.json("serving-endpoints", "get-permissions", ep_id, *seed)
        assert acl["object_id"].endswith(ep_id) and acl["access_control_list"]
        err = ladle.fails("serving-endpoints", "get-permissions", CUSTOM, *seed)
        assert f"the permissions API takes its ID: '{ep_id}'" in err

        # -- troubleshooting --------------------------------------------------------------------
        ext_id = ladle.json("serving-endpoints", "get", EXTERNAL, *seed)["id"]
        ladle.json("serving-endpoints", "update-permissions", ext_id, "--json", json.dumps({"access_control_list": [
            {"service_principal_name": "skill-app", "permission_level": "CAN_VIEW"}]}), *seed)
        err = ladle.fails("serving-endpoints", "query", EXTERNAL, "--json", CHAT_BODY, "--profile", "app")
        assert "does not have CAN_QUERY permission" in err and "`serving_endpoint` resource" in err
        with server.client(sp.json()["token_value"]) as app_http:
            denied = app_http.post(f"/serving-endpoints/{EXTERNAL}/invocations", json=json.loads(CHAT_BODY))
        assert denied.status_code == 403 and denied.json()["error_code"] == "PERMISSION_DENIED"

        first = ladle("serving-endpoints", "query", EXTERNAL, "--json", CHAT_BODY, *seed)
        err = first.stderr if first.returncode else ladle.fails("serving-endpoints", "query", EXTERNAL,
                                                                "--json", CHAT_BODY, *seed)
        assert "Exceeded the rate limit" in err and "put-ai-gateway" in err
        limited = admin.post(f"/serving-endpoints/{EXTERNAL}/invocations", json=json.loads(CHAT_BODY))
        assert limited.status_code == 429 and limited.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
        assert int(limited.headers["retry-after"]) >= 1

        for name in (PPT, PT, EXTERNAL, CUSTOM):
            assert ladle.ok("serving-endpoints", "delete", name, *seed).strip() == ""
        err = ladle.fails("serving-endpoints", "get", CUSTOM, *seed)
        assert f"Endpoint with name '{CUSTOM}' does not exist" in err and "serving-endpoints list" in err
        gone = admin.get(f"/api/2.0/serving-endpoints/{CUSTOM}")
        assert gone.status_code == 404 and gone.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    finally:
        upstream.__exit__(None, None, None)
        admin.delete("/api/2.0/mlflow/registered-models/alias", params={"name": alias["name"], "alias": "skill"})
        for name in (CUSTOM, PPT, PT, EXTERNAL):
            admin.delete(f"/api/2.0/serving-endpoints/{name}")
