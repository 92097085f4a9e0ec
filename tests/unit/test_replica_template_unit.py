"""The replica template's server side without its imports: which replicas it forks, what
a template that cannot start gives (no child: the caller starts a fresh worker), one started
before the server's event loop (adopted, or killed when nobody adopts it), and the eager start."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys

from ladle.runtimes.local import LocalBackend
from ladle.runtimes.template import Prestarted, Template


def test_only_the_servers_own_environment_is_forked():
    t = Template(python=sys.executable)
    assert t.serves(sys.executable, {})
    assert t.serves(sys.executable, {"MY_SETTING": "x"})          # entity variables do not matter
    assert not t.serves(sys.executable, {"PYTHONPATH": "/envs/_ladle"})  # a uv-built environment
    assert not t.serves("/envs/abc/bin/python", {})


def test_a_template_that_cannot_start_forks_nothing_and_is_not_restarted_in_a_loop():
    async def scenario():
        t = Template(start_timeout=5.0, python="/bin/false")   # exits at once, never "ready"
        a, b = socket.socketpair()
        try:
            assert await t.fork(b, 5.0) is None
            assert t.starts == 2          # found dead, replaced and asked again once
            await asyncio.sleep(0)        # its watcher runs: a never-ready template is not restarted
            await asyncio.wait_for(t._watch, 5.0)
            assert t.starts == 2 and not t.alive
        finally:
            a.close()
            b.close()
            await t.close()
        assert await t.fork(b, 5.0) is None   # closed: nothing more starts
        assert t.starts == 2

    asyncio.run(scenario())


def _fake_template(tmp_path):
    """An interpreter stand-in that acts as a template: says ready, then waits for its end."""
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho ready >&0\nexec cat <&0 >/dev/null\n")
    fake.chmod(0o755)
    return str(fake)


def test_a_prestarted_template_is_adopted_once_and_ended_by_close(tmp_path):
    python = _fake_template(tmp_path)
    pre = Prestarted(python)

    async def scenario():
        t = Template(start_timeout=5.0, python=python, prestarted=pre)
        try:
            await t.ensure()
            assert pre.adopted and t.proc.pid == pre.popen.pid and t.starts == 1
            assert await asyncio.wait_for(asyncio.shield(t._ready), 5.0)   # it said ready
        finally:
            await t.close()
        assert pre.popen.returncode == -signal.SIGKILL and t.proc.returncode == -signal.SIGKILL

    asyncio.run(scenario())
    pre.kill()                      # adopted: the server's Template ended it, nothing more to do


def test_a_prestarted_template_nobody_adopts_is_killed(tmp_path):
    pre = Prestarted(_fake_template(tmp_path))
    other = Template(python=sys.executable, prestarted=pre)   # another interpreter: not adopted
    assert other._prestarted is None
    pre.kill()
    assert pre.popen.returncode == -signal.SIGKILL


def test_an_eager_backend_starts_its_template_at_its_first_observation(tmp_path):
    async def scenario():
        backend = LocalBackend(None, tmp_path / "run", tmp_path / "logs", 5.0, warm_spares=0, template_eager=True)
        started = []

        async def ensure():
            started.append(1)

        backend.launcher.template.ensure = ensure
        assert backend.observe() == {}          # no endpoint at all
        backend.observe()
        await asyncio.sleep(0)
        assert started == [1]                   # once, without any group

    asyncio.run(scenario())
