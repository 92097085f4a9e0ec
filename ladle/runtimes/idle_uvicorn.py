"""uvicorn serving on an inherited listening socket until it has been idle for a while: the
embedded registry's child (runtimes/mlflow_gate.py, started by runtimes/mlflow_tracking.py).

It stops once nothing was asked of it for `idle_s` seconds and no connection is open (a
client's idle keep-alive connection is closed by the client, or by uvicorn after
KEEP_ALIVE_S): it closes its copy of the listening socket and exits 0. The check and the
close happen in one turn of its event loop, so no connection is accepted in between; the
socket stays open and listening in ladle's server, and a connection made from then on waits
in the kernel's backlog for the next child. Nothing is ever closed under a client, and a new
connection never waits for an old child to drain.

A connection that never sends a request holds it for at most LINGER_S more (uvicorn times out
only connections that were answered): then it stops anyway, and uvicorn's shutdown closes it.

uvicorn has no idle stop of its own: this subclass extends two methods of its Server,
`startup` (to say "ready") and `on_tick` (called every 0.1 s by its main loop).
"""

from __future__ import annotations

import socket
import sys
from typing import Any, Callable

import uvicorn

# uvicorn closes an idle keep-alive connection after this long. It is longer than httpx's
# keep-alive expiry (5 s, the default of every httpx client of the registry), so a pooled
# connection is never reused at the moment the registry closes it.
KEEP_ALIVE_S = 15.0
# Past idle_s, how long a connection that sent nothing may hold the stop back.
LINGER_S = 2 * KEEP_ALIVE_S


class IdleServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, idle_for: Callable[[], float], idle_s: float,
                 on_ready: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self.idle_for, self.idle_s, self.on_ready = idle_for, idle_s, on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.on_ready is not None:
            self.on_ready()

    async def on_tick(self, counter: int) -> bool:
        if await super().on_tick(counter):
            return True
        if self.idle_s <= 0:
            return False
        idle = self.idle_for()
        open_now = len(self.server_state.connections)
        if idle < self.idle_s or (open_now and idle < self.idle_s + LINGER_S):
            return False
        for server in self.servers:   # this process's copy of the socket only
            server.close()
        print(f"idle for {idle:.1f} s ({open_now} connection(s) open): stopping", file=sys.stderr, flush=True)
        return True


def serve(app: Any, sock: socket.socket, idle_for: Callable[[], float], idle_s: float,
          on_ready: Callable[[], None] | None = None) -> None:
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5,
                            timeout_keep_alive=int(KEEP_ALIVE_S))
    IdleServer(config, idle_for, idle_s, on_ready).run(sockets=[sock])
