"""The replica template's server side without its imports: which replicas it forks, and what
a template that cannot start gives (no child: the caller starts a fresh worker)."""

from __future__ import annotations

import asyncio
import socket
import sys

from ladle.runtimes.template import Template


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
