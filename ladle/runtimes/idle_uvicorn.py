"""uvicorn serving on an inherited listening socket until it has been idle for a while: the
embedded registry's child (runtimes/mlflow_gate.py, started by runtimes/mlflow_tracking.py).

Once nothing was asked of it for `idle_s` seconds it closes its copy of the listening socket
(the socket stays open and listening in ladle's server, so a connection made from then on
waits in the kernel's backlog for the next child), lets every open connection finish (a
request in flight is answered; an idle keep-alive connection is closed by uvicorn's
keep-alive timer) and returns: the process exits 0.

uvicorn has no idle stop of its own: this subclass extends two methods of its Server,
`startup` (to say "ready") and `on_tick` (called every 0.1 s by its main loop).
"""

from __future__ import annotations

import socket
import sys
import time
from typing import Any, Callable

import uvicorn

# uvicorn closes an idle keep-alive connection after this long. It is longer than httpx's
# keep-alive expiry (5 s, the default of every httpx client of the registry), so a pooled
# connection is never reused at the moment the registry closes it.
KEEP_ALIVE_S = 15.0
# After it stopped accepting: a connection that has sent no request for this long (uvicorn's
# keep-alive timer starts only after a first response) no longer holds the exit back.
LINGER_S = 2 * KEEP_ALIVE_S


class IdleServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, idle_for: Callable[[], float], idle_s: float,
                 on_ready: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self.idle_for, self.idle_s, self.on_ready = idle_for, idle_s, on_ready
        self.closed_at: float | None = None     # when it stopped accepting

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.on_ready is not None:
            self.on_ready()

    async def on_tick(self, counter: int) -> bool:
        if await super().on_tick(counter):
            return True
        if self.idle_s <= 0:
            return False
        if self.closed_at is None:
            if self.idle_for() >= self.idle_s:
                for server in self.servers:   # this process's copy of the socket only
                    server.close()
                self.closed_at = time.monotonic()
                print(f"idle for {self.idle_s:g} s: no longer accepting; exiting once its "
                      f"{len(self.server_state.connections)} open connection(s) are closed",
                      file=sys.stderr, flush=True)
            return False
        if not self.server_state.connections:
            return True
        # connections that never sent a request: uvicorn's shutdown closes them (busy ones finish)
        return self.idle_for() > 0 and time.monotonic() - self.closed_at > LINGER_S


def serve(app: Any, sock: socket.socket, idle_for: Callable[[], float], idle_s: float,
          on_ready: Callable[[], None] | None = None) -> None:
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5,
                            timeout_keep_alive=int(KEEP_ALIVE_S))
    IdleServer(config, idle_for, idle_s, on_ready).run(sockets=[sock])
