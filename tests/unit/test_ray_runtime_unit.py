"""The Ray runtime's pure parts (no Ray cluster): application names, Serve status parsing,
failure reasons, and that importing it does not import ray."""

from __future__ import annotations

import subprocess
import sys

from ladle.runtimes.ray_serve import AppView, app_name, failure_reason, parse_apps


def test_importing_the_runtime_does_not_import_ray():
    code = ("import sys, ladle.runtimes.ray, ladle.runtimes.ray_deployment, ladle.runtimes.ray_group; "
            "assert 'ray' not in sys.modules, sorted(m for m in sys.modules if m.startswith('ray'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_app_names_are_safe_stable_and_distinct():
    key = "0123456789ab-iris_v2-abcdef012345"
    assert app_name(key) == "ladle-" + key
    odd = "0123456789ab-my model/#1-abcdef012345"
    name = app_name(odd)
    assert name.startswith("ladle-0123456789ab-my_model__1-") and name == app_name(odd)
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
    assert app_name("a b") != app_name("a_b")
    assert len(app_name("x" * 500)) <= 6 + 80 + 13


DETAILS = {
    "applications": {
        "ladle-k1": {
            "status": "RUNNING", "message": "",
            "deployments": {"LadleReplica": {
                "status": "HEALTHY", "message": "", "target_num_replicas": 2,
                "replicas": [{"pid": 11, "node_ip": "10.0.0.1", "state": "RUNNING"},
                             {"pid": 12, "node_ip": "10.0.0.2", "state": "STARTING"}],
            }},
        },
        "someone-elses-app": {"status": "RUNNING", "message": "", "deployments": {}},
    }
}


def test_parse_apps_keeps_ladles_applications():
    apps = parse_apps(DETAILS)
    assert list(apps) == ["ladle-k1"]
    v = apps["ladle-k1"]
    assert (v.status, v.running, v.target, v.deployment_status) == ("RUNNING", 1, 2, "HEALTHY")
    assert v.replicas == [(11, "10.0.0.1", "RUNNING"), (12, "10.0.0.2", "STARTING")]


def _failed(deployment_message: str) -> AppView:
    return AppView("DEPLOY_FAILED", "Deploying app 'x' failed.", 0, 1, "DEPLOY_FAILED",
                   deployment_message, [])


def test_failure_reason_is_the_exception_line_not_the_traceback_source():
    msg = ("The deployment failed to start 1 times in a row. This may be due to a problem with its "
           "constructor or initial health check failing. See controller logs for details. Error:\n"
           "Traceback (most recent call last):\n"
           '  File "ray_deployment.py", line 120, in __init__\n'
           '    raise RuntimeError(f"Build failed: {e}") from None\n'
           "RuntimeError: Build failed: no saved model 'm'\n")
    assert failure_reason(_failed(msg)) == "Build failed: no saved model 'm'"
    msg2 = ("The deployment failed to start 1 times in a row. Error:\n"
            "ray::ServeReplica:ladle-x:LadleReplica.initialize_and_get_metadata() (pid=1)\n"
            "RuntimeError: Replica failed to start: replica process exited with code 1 while loading. "
            "RuntimeError: boom\n")
    assert failure_reason(_failed(msg2)) == (
        "Replica failed to start: replica process exited with code 1 while loading. RuntimeError: boom")


def test_failure_reason_falls_back_to_serves_message():
    reason = failure_reason(_failed("The deployment failed to start 3 times in a row.\nValueError: bad"))
    assert reason == "The deployment failed to start 3 times in a row. ValueError: bad"


def test_registry_preparer_travels_to_ray_nodes_and_refuses_other_kinds():
    import asyncio
    import pickle

    from ladle.runtimes.base import GroupSpec
    from ladle.runtimes.ray_deployment import RegistryPreparer

    # it carries no credentials (they wait, sealed, in the cluster's KV) and no server path
    prep = pickle.loads(pickle.dumps(RegistryPreparer()))
    assert prep == RegistryPreparer() and prep.models_dir is None
    spec = GroupSpec(key="k", endpoint_id="e", endpoint_name="ep", entity_name="x",
                     model_name="system.ai.m", model_version="1", kind="foundation")
    try:
        asyncio.run(prep(spec, print))
    except RuntimeError as e:
        assert "cannot be prepared on a Ray node" in str(e)
    else:
        raise AssertionError("expected a refusal")


def test_secrets_reach_serve_sealed_and_open_on_a_node_with_the_key(monkeypatch):
    import pickle
    from types import SimpleNamespace

    import pytest
    from cryptography.fernet import Fernet

    from ladle.runtimes.base import GroupSpec, Prepared
    from ladle.runtimes.ray import RayBackend
    from ladle.runtimes.ray_seal import ENV_VAR, unseal

    monkeypatch.setenv(ENV_VAR, Fernet.generate_key().decode())
    spec = GroupSpec("k", "e", "ep", "iris-1", "iris", "1", env_vars=(("API_KEY", "{{secrets/s/k}}"),))
    prepared = Prepared("/py", "/m", {"API_KEY": "the-resolved-secret", "PYTHONPATH": "/p"})
    # the backend's settings only (constructing one would connect to Ray)
    b = SimpleNamespace(prepare_in_replica=False, resolve_env=lambda env: {k: "the-resolved-secret" for k in env},
                        start_timeout=60.0, logs_dir=None,
                        prepare=None, replica_cpus=1.0, actor_options={}, max_ongoing_requests=None,
                        start_retries=1, health_check_period_s=5.0)
    b.deploy_args = lambda *a: RayBackend.deploy_args(b, *a)
    b.entity_digest = lambda *a: RayBackend.entity_digest(b, *a)
    b._deployment_options = lambda: RayBackend._deployment_options(b)
    args = b.deploy_args(spec, prepared)
    assert b"the-resolved-secret" not in pickle.dumps(args)   # what Serve keeps
    _spec, sent, _preparer, options = args["init"]
    assert sent.env == {}
    assert unseal(options.sealed_env) == {"prepared": prepared.env, "env": {}}
    # adoptable: the digest names the entity and the settings, not where a server prepared it
    assert b.deploy_args(spec, Prepared("/elsewhere/py", "/elsewhere/m", {}))["digest"] == args["digest"]
    args_env, b.resolve_env = b.resolve_env, lambda env: {k: "another-secret" for k in env}  # a secret changed
    assert b.deploy_args(spec, prepared)["digest"] != args["digest"]
    b.resolve_env, b.replica_cpus = args_env, 2.0   # another replica setting
    assert b.deploy_args(spec, prepared)["digest"] != args["digest"]
    monkeypatch.setenv(ENV_VAR, Fernet.generate_key().decode())
    with pytest.raises(RuntimeError, match="not the ladle server's"):
        unseal(options.sealed_env)


def test_build_lines_relayed_by_a_node_reach_the_owners_build_log_once_each(monkeypatch):
    """A replica preparing on its node relays its build lines through the cluster's KV (a
    window of the last lines and a count); the owner copies each new line once, marked with
    the node, even after the window slid."""
    import asyncio
    import json
    from types import SimpleNamespace

    from ladle.runtimes import ray_serve as rs
    from ladle.runtimes.ray import RayBackend

    kv: dict[str, str] = {}
    monkeypatch.setattr(rs, "kv_put", lambda k, v: kv.__setitem__(k, v))
    monkeypatch.setattr(rs.BuildRelay, "MAX_RELAYED", 3)
    relay = rs.BuildRelay("ladle-app", "Ray node abc")
    monkeypatch.setattr(rs, "read_build_lines", lambda app: {
        k: (d["node"], d["count"], d["lines"]) for k, d in ((k, json.loads(v)) for k, v in kv.items())})
    written: list[str] = []
    group = SimpleNamespace(app="ladle-app", relayed={}, logs=SimpleNamespace(build=written.append))

    async def run_blocking(fn, *args):
        return fn(*args)

    b = SimpleNamespace(prepare_in_replica=True, _groups={"k": group}, _apps={"ladle-app": object()},
                        run_blocking=run_blocking)
    relay("one")
    relay("two")
    asyncio.run(RayBackend._relay_builds(b))
    for line in ("three", "four", "five", "six"):   # the window (3 lines) slides past unread ones
        relay(line)
    asyncio.run(RayBackend._relay_builds(b))
    asyncio.run(RayBackend._relay_builds(b))        # nothing new: nothing copied again
    assert written == ["[Ray node abc] one", "[Ray node abc] two", "[Ray node abc] four",
                       "[Ray node abc] five", "[Ray node abc] six"]


def test_runtime_log_lines_of_a_node_reach_the_owners_server_log_once_each_sealed_and_bounded(
        monkeypatch, tmp_path):
    """A replica preparing on its node tails its server.log into a sealed, bounded KV window;
    the owner copies each new complete line once into the entity's server.log, marked with
    the node, even after the window slid past unread lines."""
    import asyncio
    from types import SimpleNamespace

    from cryptography.fernet import Fernet

    from ladle.runtimes import ray_log_relay as rl
    from ladle.runtimes import ray_serve as rs
    from ladle.runtimes.ray import RayBackend
    from ladle.runtimes.ray_seal import ENV_VAR

    monkeypatch.setenv(ENV_VAR, Fernet.generate_key().decode())
    kv: dict[str, str] = {}
    monkeypatch.setattr(rs, "kv_put", lambda k, v: kv.__setitem__(k, v))
    monkeypatch.setattr(rl, "read_log_lines", lambda app: rl.parse_windows(list(kv), kv.get))
    monkeypatch.setattr(rl.LogRelay, "MAX_RELAYED", 3)
    monkeypatch.setattr(rl.LogRelay, "MAX_LINE", 20)
    log_file = tmp_path / "server.log"
    tail = rl.ServerLogTail(log_file, rl.LogRelay("ladle-app", "Ray node abc"))
    written: list[str] = []
    group = SimpleNamespace(app="ladle-app", relayed={}, logs=SimpleNamespace(server_raw=written.append))

    async def run_blocking(fn, *args):
        return fn(*args)

    b = SimpleNamespace(prepare_in_replica=True, _groups={"k": group}, _apps={"ladle-app": object()},
                        run_blocking=run_blocking)

    def append(text: str) -> None:
        with open(log_file, "a") as f:
            f.write(text)

    assert tail.pump() == 0                               # no file yet
    append("model says hello secret-ish\nhalf a li")
    assert tail.pump() == 1                               # the partial line waits for its newline
    assert "hello" not in "".join(kv.values())            # sealed in the cluster's KV
    asyncio.run(RayBackend._relay_logs(b))
    append("ne\nthree\nfour\nfive\n")
    assert tail.pump() == 4
    asyncio.run(RayBackend._relay_logs(b))
    asyncio.run(RayBackend._relay_logs(b))                # nothing new: nothing copied again
    assert written == ["[Ray node abc] model says hello sec", "[Ray node abc] three",
                       "[Ray node abc] four", "[Ray node abc] five"]
    [(key, window)] = kv.items()
    assert key.startswith("logs/ladle-app/") and len(rl.parse_windows([key], kv.get)[key][2]) == 3
    monkeypatch.setattr(rl.LogRelay, "MAX_CHARS", 12)                 # the window's size in characters
    append("sixsix\nseven7\n")
    tail.pump()
    assert rl.parse_windows([key], kv.get)[key][1:] == (7, ["sixsix", "seven7"])


def test_runtime_log_lines_wait_while_the_kv_is_away(monkeypatch, tmp_path):
    """A push that fails (the KV is away) relays nothing and loses nothing: the next pump
    sends the same lines once."""
    import pytest
    from cryptography.fernet import Fernet

    from ladle.runtimes import ray_log_relay as rl
    from ladle.runtimes import ray_serve as rs
    from ladle.runtimes.ray_seal import ENV_VAR

    monkeypatch.setenv(ENV_VAR, Fernet.generate_key().decode())
    kv: dict[str, str] = {}

    def away(k, v):
        raise ConnectionError("GCS unreachable")

    monkeypatch.setattr(rs, "kv_put", away)
    (tmp_path / "server.log").write_text("one\ntwo\n")
    tail = rl.ServerLogTail(tmp_path / "server.log", rl.LogRelay("ladle-app", "Ray node abc"))
    with pytest.raises(ConnectionError):
        tail.pump()
    monkeypatch.setattr(rs, "kv_put", lambda k, v: kv.__setitem__(k, v))
    assert tail.pump() == 2
    [(key, _)] = kv.items()
    assert rl.parse_windows([key], kv.get)[key] == ("Ray node abc", 2, ["one", "two"])
