"""Model code is contained: a hostile pyfunc, registered with the real MLflow client by an
ordinary user and served by an endpoint that user creates, tries every way out of its
replica (environment, files under LADLE_HOME, /proc/*/environ, loopback ports incl. the
embedded registry, other replicas' sockets) and answers what it found. Nothing sensitive
comes back; the same model still reads its artifact, writes its temp dir and calls a
loopback HTTP server the test runs."""

from __future__ import annotations

import http.server
import json
import os
import secrets
import threading

import pytest

from ladle.testing.model_code import HOSTILE_MODEL_CODE
from ladle.testing.registry import register_code_model

from e2e_support import client, create_endpoint, entity

HOSTILE = "main.default.hostile"


@pytest.fixture(scope="module")
def outbound():
    """A loopback HTTP server of the test's own: 200 and a nonce on every GET."""
    nonce = secrets.token_hex(8)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"outbound-ok {nonce}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield {"url": f"http://127.0.0.1:{srv.server_address[1]}/hello", "nonce": nonce,
           "port": srv.server_address[1]}
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def victim(admin, models):
    """Another endpoint (the admin's) whose replica holds a secret in its environment."""
    value = "victim-secret-" + secrets.token_hex(12)
    admin.post("/api/2.0/secrets/scopes/create", json={"scope": "e2e-victim"})
    r = admin.post("/api/2.0/secrets/put", json={"scope": "e2e-victim", "key": "k", "string_value": value})
    assert r.status_code == 200, r.text
    ep = create_endpoint(admin, {"name": "victim", "config": {"served_entities": [
        entity("1", environment_vars={"VICTIM_SECRET": "{{secrets/e2e-victim/k}}"})]}})
    yield {"secret": value, "id": ep["id"]}
    admin.delete("/api/2.0/serving-endpoints/victim")


@pytest.fixture(scope="module")
def mallory(server, admin, tmp_path_factory):
    """An ordinary user, her hostile model (registered with her token) and her endpoint."""
    r = admin.post("/api/2.0/token-management/on-behalf-of/tokens", json={"user_name": "mallory"})
    assert r.status_code == 200, r.text
    token = r.json()["token_value"]
    work = tmp_path_factory.mktemp("hostile")
    greeting = work / "greeting.txt"
    greeting.write_text("hello from my own artifact")
    register_code_model(server.url, token, HOSTILE, HOSTILE_MODEL_CODE, work,
                        artifacts={"greeting": str(greeting)})
    with client(server, token) as http:
        create_endpoint(http, {"name": "hostile", "config": {"served_entities": [{
            "entity_name": HOSTILE, "entity_version": "1", "workload_size": "Small",
            "scale_to_zero_enabled": False, "environment_vars": {"MY_SETTING": "mine"}}]}}, timeout=180)
        yield http
        http.delete("/api/2.0/serving-endpoints/hostile")


def _registry_port(server) -> int:
    for p in server.descendants():
        cmd = p.cmdline()
        if "ladle.runtimes.mlflow_gate" in cmd:   # it listens on a socket the server handed it
            return next(c.laddr.port for c in p.net_connections(kind="inet") if c.status == "LISTEN")
    raise AssertionError("the embedded MLflow registry process was not found")


def test_hostile_model_finds_nothing_and_still_works(server, mallory, victim, outbound):
    args = {"home": str(server.home), "outbound": outbound["url"], "nonce": outbound["nonce"],
            "paths": ["/proc/1/environ", "/root/.bash_history"]}
    with client(server) as admin:   # the registry runs (it stops when idle): the probe's 3 s see it answer
        assert admin.get("/api/2.0/mlflow/experiments/search", params={"max_results": 1}).status_code == 200
    r = mallory.post("/serving-endpoints/hostile/invocations",
                     json={"dataframe_records": [{"args": json.dumps(args)}]}, timeout=120)
    assert r.status_code == 200, r.text
    found = json.loads(r.json()["predictions"][0])
    dump = json.dumps(found)

    # nothing sensitive anywhere in what it found
    secret_key = os.environ.get("LADLE_SECRET_KEY") or (server.home / "secrets.key").read_text().strip()
    for sensitive in (server.admin_token, secret_key, victim["secret"]):
        assert sensitive not in dump

    # its environment: what its entity was given plus a minimal base
    env = found["env"]
    assert env["MY_SETTING"] == "mine"
    assert not [k for k in env if k.startswith("LADLE_")], env
    assert not {"MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_URI", "DATABRICKS_TOKEN"} & set(env)
    assert env["HOME"] != os.environ.get("HOME") and env["TMPDIR"]
    if os.geteuid() == 0:  # the server runs as root: the worker does not
        assert found["uid"] != 0

    # ladle's state: nothing under LADLE_HOME can be seen or read (the worker's view of it
    # holds at most the way to its own scratch directory)
    listing = found["home_listing"]
    assert str(listing).startswith("ERR:") or set(listing) <= {"run"}, listing
    own = os.path.dirname(env["HOME"]) + "/"  # its scratch: HOME, TMPDIR, its model's copy
    read = {p: v for p, v in found["files"].items() if v.startswith("READ:") and not p.startswith(own)}
    assert not read, sorted(read)
    assert any(p.startswith(own) and p.endswith("MLmodel") for p in found["files"])

    # no other process's environment
    leaked = {pid: v["environ"][:200] for pid, v in found["proc"].items() if v["environ"] not in ("READ:",)
              and not v["environ"].startswith("ERR:")}
    assert not leaked, leaked
    victim_pids = [p.pid for p in server.replica_procs(victim["id"])]
    assert victim_pids and all(found["proc"][str(p)]["environ"].startswith("ERR:") for p in victim_pids)
    assert found["proc"][str(server.proc.pid)]["environ"].startswith("ERR:")

    # the embedded registry and ladle's own port answer 401 without credentials
    reg = _registry_port(server)
    assert found["ports"][str(reg)].startswith("401:"), found["ports"][str(reg)]
    assert found["ports"][str(server.port)].startswith("401:"), found["ports"][str(server.port)]

    # no other replica's socket (nor anything under LADLE_HOME): the server's sockets are in
    # its short socket directory, which run/sockets links to
    sockets_dir = os.readlink(server.home / "run" / "sockets")
    ours = {p: v for p, v in found["sockets"].items() if p.startswith((str(server.home), sockets_dir + "/"))}
    assert any(p.startswith(sockets_dir + "/") for p in ours), found["sockets"]
    assert all(v != "CONNECTED" for v in ours.values()), ours

    # ordinary work still works
    assert found["artifact"] == "hello from my own artifact"
    assert found["tmp_read"] == "READ:scratch " + outbound["nonce"]
    assert found["tmp_file"].startswith(env["TMPDIR"])
    assert found["outbound"] == f"200:outbound-ok {outbound['nonce']}"
