"""RayBackend against a REAL local Ray cluster (started once for the module), driven the way
the reconciler (ensure/observe/stop) and the gateway pool (group/replicas/call/wake/wait_ready)
drive it, with real MLflow models loaded by ladle's worker inside Ray Serve replicas. The
cluster, the models, the backends and the groups are in ray_backend_fixtures.py.

The models are saved to local directories (no registry): the preparer (DirPreparer) resolves
a model name to its saved directory and picks the interpreter with ladle's own `python_for`
(the test's environment satisfies the models' requirements, so that is this interpreter).
The `leader` backend prepares in the server and passes the paths to the replicas; the
`on_node` backend ships the preparer to the replicas, which prepare on their Ray node.

Each test ensures the groups it needs (`iris1`, `iris2`, `streamer`: a test before it may
have scaled or stopped them), so the tests pass alone and in any order; the cluster and the
first start are shared by the module. Deselect with `-m "not ray"`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import textwrap
import time
from pathlib import Path

import pytest
import pytest_asyncio

pytest.importorskip("ray.serve", reason="the Ray runtime needs the `ray` extra (ray[serve])")

from ladle.control.states import GroupState  # noqa: E402
from ladle.runtimes.base import GroupSpec, ReplicaGone  # noqa: E402
from ladle.runtimes.ray import RayBackend, app_name  # noqa: E402
from ladle.testing.dir_preparer import DirPreparer  # noqa: E402
from ladle.testing.waiting import wait_quiet  # noqa: E402
from ray_backend_fixtures import (  # noqa: E402,F401 (fixtures are found by name)
    BROKEN_MARKER, IRIS, JSON, ROWS, frame_body, follower, iris1, iris2, leader, models, on_node,
    ray_cluster, running, spec_for, started, streamer, through_handle, until)

pytestmark = [pytest.mark.ray, pytest.mark.file_order, pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.timeout(300)]


# -- tests --------------------------------------------------------------------------------------

async def test_ready_and_real_predictions(leader, iris1, models):
    obs = leader.observe()[IRIS.key]
    assert (obs.ready, obs.target, obs.in_flight) == (1, 1, 0)
    assert "replica(s) ready" in obs.message
    group = leader.group(IRIS.key)
    [replica] = group.replicas()
    assert replica.alive and replica.in_flight == 0
    reply = await replica.call(JSON, frame_body(ROWS))
    assert reply.status == 200 and reply.content_type.startswith("application/json")
    assert json.loads(await reply.read()) == {"predictions": models["iris_expected"]}
    # a bad request is the model server's answer, not a transport failure
    bad = await replica.call(JSON, b'{"dataframe_split": {"columns": ["nope"], "data": [[1]]}}')
    assert bad.status == 400 and json.loads(await bad.read())["error_code"] == "INVALID_PARAMETER_VALUE"
    assert replica.in_flight == 0 and leader.observe()[IRIS.key].in_flight == 0
    logs = (leader.logs_path / IRIS.endpoint_id / IRIS.entity_name)
    # the group may have been deployed with two replicas by an earlier test, then scaled to one
    assert re.search(r"deployed with \d replica\(s\)", (logs / "build.log").read_text())
    assert "model loaded" in (logs / "server.log").read_text()


async def test_same_machine_replicas_are_reached_on_their_socket_others_through_serve(
        leader, through_handle, iris1, models):
    from ladle.runtimes.ray_replica import DirectReplica

    group = leader.group(IRIS.key)
    await until(lambda: any(isinstance(r, DirectReplica) for r in group.replicas()), 10,
                "the leader to attach to the replica's socket")
    [direct] = group.replicas()
    assert isinstance(direct, DirectReplica) and await _predict(direct) == models["iris_expected"]
    far = await until(lambda: through_handle.group(IRIS.key), 20, "the handle-only follower's group")
    await until(lambda: far.replicas(), 10, "the handle-only follower to see the replica")
    [via_serve] = far.replicas()
    assert not isinstance(via_serve, DirectReplica)
    assert await _predict(via_serve) == models["iris_expected"]


async def test_streaming_reply_yields_chunks_as_generated(on_node, streamer):
    [replica] = on_node.group(streamer.key).replicas()
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "stream": True})
    reply = await replica.call(JSON, body.encode())
    assert reply.status == 200 and reply.content_type == "text/event-stream"
    chunks, times = [], []
    async for c in reply.chunks:
        chunks.append(c)
        times.append(time.monotonic())
    events = [c for c in chunks if c.startswith(b"data:")]
    assert len(chunks) >= 5 and events[-1].strip() == b"data: [DONE]"
    text = "".join(json.loads(e[5:])["choices"][0]["delta"]["content"] for e in events[:-1])
    assert text == "tok0 tok1 tok2 tok3 "
    assert times[-1] - times[0] > 0.25  # the chunks came as the model made them, not at once


async def test_what_a_model_prints_on_its_node_reaches_the_owners_runtime_log(on_node, streamer):
    """A replica preparing on its node writes its runtime log on that node only; the lines
    reach the owner's server.log of the entity through the cluster's KV, marked with the
    node (this backend's replicas never write under the server's logs dir themselves)."""
    said = f"log-relay-{os.getpid()}-{time.monotonic_ns()}"
    [replica] = on_node.group(streamer.key).replicas()
    body = json.dumps({"messages": [{"role": "user", "content": said}]}).encode()
    reply = await replica.call(JSON, body)
    out = await reply.read()
    assert reply.status == 200 and b"unary" in out, out
    logs = on_node.logs_for(streamer)
    await until(lambda: f"streamer predict: {said}" in logs.read_server(), 20,
                "the printed line in the owner's server.log")
    text = logs.read_server()
    assert re.search(rf"^\[Ray node [0-9a-f]{{12}}\] streamer predict: {said}$", text, re.M), text[-2000:]
    assert re.search(r"^\[Ray node [0-9a-f]{12}\] \S+ \[ladle\] replica pid \d+ ready", text, re.M), text[-2000:]


async def test_closing_a_stream_stops_generation(on_node, started, streamer):
    marker: Path = started["marker"]
    [replica] = on_node.group(streamer.key).replicas()
    before = marker.read_text().count("\n") if marker.exists() else 0
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 200, "stream": True})
    reply = await replica.call(JSON, body.encode())
    it = reply.chunks.__aiter__()
    for _ in range(2):
        await it.__anext__()
    await reply.chunks.aclose()
    assert replica.in_flight == 0
    settled = await asyncio.to_thread(wait_quiet, lambda: marker.read_text().count("\n"), 1.0, 30,
                                      what="the model to stop generating")
    assert settled - before < 40  # long before its 200 chunks


async def test_scale_to_two_keeps_the_running_replica(leader, iris1):
    from ray import serve

    app = app_name(IRIS.key)
    first = {pid for pid, _, state in leader._apps[app].replicas if state == "RUNNING"}
    leader.ensure(IRIS, 2)
    assert leader.observe()[IRIS.key].target == 2
    await until(lambda: leader.observe()[IRIS.key].ready == 2, 90, "two replicas")
    status = serve.status().applications[app]
    assert status.deployments["LadleReplica"].replica_states.get("RUNNING") == 2
    now = {pid for pid, _, state in leader._apps[app].replicas if state == "RUNNING"}
    assert first < now  # scaled, not a rolling restart
    group = leader.group(IRIS.key)
    assert len(group.replicas()) == 2
    workers = set()
    for _ in range(30):
        workers.add((await group.handle.info.remote())["worker_pid"])
    assert len(workers) == 2  # Ray Serve balances over both
    results = await asyncio.gather(*(_predict(r) for r in group.replicas() * 3))
    assert all(r == results[0] for r in results)
    cpu, mem = leader.resource_usage(IRIS.key)  # both replicas run on this machine
    assert mem > 100 and cpu >= 0


async def _predict(replica) -> list:
    reply = await replica.call(JSON, frame_body(ROWS))
    return json.loads(await reply.read())["predictions"]


async def test_follower_finds_the_group_by_key(leader, follower, iris2, models):
    group = await until(lambda: follower.group(IRIS.key), 20, "the follower to find the application")
    assert follower.observe() == {}  # it owns nothing: its reconciler would stop nothing
    await until(lambda: len(group.replicas()) == 2, 10, "the follower to see both replicas")
    assert await _predict(group.replicas()[0]) == models["iris_expected"]
    assert follower.group("raytest01-nothing-000000000000") is None


FOLLOWER_SCRIPT = textwrap.dedent('''
    import asyncio, json, sys, time
    from ladle.runtimes.ray import RayBackend

    async def main():
        b = RayBackend(None, None, address=sys.argv[1], poll_interval_s=0.2)
        deadline = time.monotonic() + 60
        while (g := b.group(sys.argv[2])) is None or not g.replicas():
            assert time.monotonic() < deadline, "not found"
            await asyncio.sleep(0.2)
        reply = await g.replicas()[0].call({"content_type": "application/json"}, sys.argv[3].encode())
        print(json.dumps({"status": reply.status, "body": json.loads(await reply.read())}))
        await b.close()

    asyncio.run(main())
''')


async def test_follower_in_another_process(ray_cluster, iris1, models):
    """What a second ladle server does: its own driver connects to the cluster by address."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", FOLLOWER_SCRIPT, ray_cluster, IRIS.key, frame_body(ROWS).decode(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ})
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()[-3000:]
    got = json.loads(out.decode().strip().splitlines()[-1])
    assert got == {"status": 200, "body": {"predictions": models["iris_expected"]}}


async def test_scale_to_zero_and_wake_through_a_follower(leader, follower, iris1, models):
    leader.ensure(IRIS, 0)
    await until(lambda: leader.observe()[IRIS.key].state == GroupState.SCALED_TO_ZERO, 60, "scale to zero")
    obs = leader.observe()[IRIS.key]
    assert (obs.ready, obs.target) == (0, 0)
    fgroup = await until(lambda: follower.group(IRIS.key), 10, "the follower's group")
    await until(lambda: not fgroup.replicas(), 10, "the follower to see no replica")
    # a request on the follower wakes the entity: the owner sees the use (shared through Ray)
    kicks, used = leader.kicks, obs.last_used
    fgroup.wake()
    await until(lambda: leader.observe()[IRIS.key].last_used > used and leader.kicks > kicks, 10,
                "the owner to see the follower's request")
    leader.ensure(IRIS, 1)  # what the reconciler does next
    assert await fgroup.wait_ready(90)
    assert await _predict(fgroup.replicas()[0]) == models["iris_expected"]
    await until(lambda: leader.observe()[IRIS.key].state == GroupState.READY, 30, "READY again")


async def test_a_dead_worker_is_replaced(leader, iris1, models):
    """The worker process dies: the request on it gets ReplicaGone (the pool's retriable
    error), the replica ends, Serve starts another, and the group recovers."""
    import signal

    group = leader.group(IRIS.key)
    [replica] = group.replicas()
    worker = (await group.handle.info.remote())["worker_pid"]
    os.kill(worker, signal.SIGKILL)
    with pytest.raises(ReplicaGone):
        await (await replica.call(JSON, frame_body(ROWS))).read()
    await until(lambda: leader.observe()[IRIS.key].state == GroupState.RECOVERING, 30, "RECOVERING")
    await until(lambda: leader.observe()[IRIS.key].state == GroupState.READY, 60, "READY again")
    assert await _predict(group.replicas()[0]) == models["iris_expected"]
    assert (await group.handle.info.remote())["worker_pid"] != worker


async def test_a_model_that_cannot_load_fails_with_the_reason(on_node, started):
    broken = spec_for("broken", "broken")
    on_node.ensure(broken, 1)
    await until(lambda: on_node.observe()[broken.key].state == GroupState.FAILED, 120, "FAILED")
    message = on_node.observe()[broken.key].message
    assert message.startswith("Replica failed to start") and BROKEN_MARKER in message, message
    await on_node.stop(broken.key)
    assert broken.key not in on_node.observe()


async def test_a_build_failure_is_reported_without_deploying(leader, started):
    missing = spec_for("no-such-model", "missing")
    leader.ensure(missing, 1)
    await until(lambda: leader.observe()[missing.key].state == GroupState.FAILED, 10, "FAILED")
    assert leader.observe()[missing.key].message == "Build failed: no saved model 'no-such-model'"
    assert app_name(missing.key) not in leader._apps
    await leader.stop(missing.key)


ADOPT = spec_for("iris", "adoptee")


def owner(address: str, models, work: Path, **settings) -> RayBackend:
    """A reconciler owner's backend with its own paths (another server's logs and envs dir):
    the leader's replica settings unless `settings` change them."""
    kw = {"replica_cpus": 0.25, "start_retries": 1, "start_timeout": 120.0, "health_check_period_s": 2.0,
          "poll_interval_s": 0.25, **settings}
    b = RayBackend(DirPreparer(models["dirs"], str(work / "envs")), work / "logs", address=address, **kw)
    b.logs_path = work / "logs"
    return b


def running_pids(b: RayBackend, app: str) -> set[int]:
    view = b._apps.get(app)
    return {pid for pid, _, state in (view.replicas if view else []) if state == "RUNNING"}


async def ready(b: RayBackend, spec: GroupSpec) -> None:
    def done() -> bool:
        obs = b.observe()[spec.key]
        return obs.state == GroupState.READY and obs.ready == 1 or obs.state == GroupState.FAILED

    await until(done, 150, f"{spec.entity_name} READY")
    assert b.observe()[spec.key].state == GroupState.READY, b.observe()[spec.key].message


@pytest_asyncio.fixture(loop_scope="module")
async def adoptee(ray_cluster, models, started, tmp_path_factory) -> set[int]:
    """ADOPT deployed by an owner that is gone since (its server stopped): the actor pids of
    its running replica."""
    first = owner(ray_cluster, models, tmp_path_factory.mktemp("first-owner"))
    try:
        first.ensure(ADOPT, 1)
        await ready(first, ADOPT)
        return running_pids(first, app_name(ADOPT.key))
    finally:
        await first.close()


async def test_a_new_owner_adopts_an_unchanged_application_and_rolls_a_changed_one(
        ray_cluster, models, adoptee, tmp_path_factory):
    app = app_name(ADOPT.key)
    successor = owner(ray_cluster, models, tmp_path_factory.mktemp("successor"))
    try:
        successor.ensure(ADOPT, 1)
        await ready(successor, ADOPT)
        assert running_pids(successor, app) == adoptee   # not one replica restarted
        build = (successor.logs_path / ADOPT.endpoint_id / ADOPT.entity_name / "build.log").read_text()
        assert "adopted with 1 replica(s)" in build and "Model directory" not in build, build
        assert await _predict(successor.group(ADOPT.key).replicas()[0]) == models["iris_expected"]
    finally:
        await successor.close()
    # an owner whose replica settings differ: another digest, so the application rolls
    changed = owner(ray_cluster, models, tmp_path_factory.mktemp("changed"), replica_cpus=0.3)
    try:
        changed.ensure(ADOPT, 1)
        await until(lambda: (p := running_pids(changed, app)) and not p & adoptee, 150, "new replicas")
        await ready(changed, ADOPT)
        build = (changed.logs_path / ADOPT.endpoint_id / ADOPT.entity_name / "build.log").read_text()
        assert "Model directory" in build and "deployed with 1 replica(s)" in build, build
    finally:
        await changed.close()


async def test_applications_no_endpoint_serves_are_collected(ray_cluster, leader, on_node, iris1, adoptee):
    """The owner of ADOPT went away and its endpoint was deleted meanwhile: the next owner's
    pass deletes the application; the groups endpoints still use stay."""
    from ray import serve

    collector = RayBackend(None, None, address=ray_cluster, poll_interval_s=0.25, orphan_grace_s=0.5)
    try:
        collector.observe()
        await until(lambda: app_name(ADOPT.key) in collector._apps, 20, "the collector's poll")
        keep = {IRIS.key, *leader.observe(), *on_node.observe()}
        collector.collect_orphans(keep)
        assert app_name(ADOPT.key) in serve.status().applications   # not before its grace
        await until(lambda: collector.collect_orphans(keep) or app_name(ADOPT.key) not in collector._apps,
                    60, "the orphaned application deleted")
        assert app_name(ADOPT.key) not in serve.status().applications
        assert app_name(IRIS.key) in serve.status().applications
        assert leader.observe()[IRIS.key].state == GroupState.READY
    finally:
        await collector.close()


async def test_stop_deletes_the_application(leader, on_node, follower, iris1, streamer):
    import psutil
    from ray import serve

    group = leader.group(IRIS.key)
    worker = (await group.handle.info.remote())["worker_pid"]
    await asyncio.gather(leader.stop(IRIS.key), on_node.stop(streamer.key))
    assert leader.observe() == {} and on_node.observe() == {}
    assert leader.group(IRIS.key) is None
    assert app_name(IRIS.key) not in serve.status().applications
    await until(lambda: follower.group(IRIS.key) is None, 10, "the follower to lose the group")

    def gone() -> bool:
        try:
            return psutil.Process(worker).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    await until(gone, 30, "the replica's worker process to exit")
