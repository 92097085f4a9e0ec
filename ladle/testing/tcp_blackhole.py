"""A TCP proxy that can turn into a database host that accepts connections and never answers.

For tests and benchmarks of outages that a refused connection would not show: while
`silent`, new connections are accepted (the client's connect succeeds) and nothing is ever
answered; existing connections are held: what either side sends is read and kept, not passed
on. `answer()` passes everything on again, like a network that heals. Runs its own event loop
in a thread, so synchronous tests drive it; binds 127.0.0.1 on a free port; nothing happens at
import time.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path


class TcpBlackhole:
    def __init__(self, upstream: str | tuple[str, int]) -> None:
        """`upstream`: a Unix socket path or (host, port) to pass traffic on to."""
        self.upstream = upstream
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-blackhole", daemon=True)
        self._open = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    # -- control (from any thread) -----------------------------------------------------
    def start(self) -> "TcpBlackhole":
        self._thread.start()
        self.port = self._run(self._start())
        return self

    def silence(self) -> None:
        """From now on accept and never answer; hold existing connections silent."""
        self._loop.call_soon_threadsafe(self._open.clear)

    def answer(self) -> None:
        """Pass traffic on again (what was held is delivered)."""
        self._loop.call_soon_threadsafe(self._open.set)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._run(self._stop())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> "TcpBlackhole":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, coro):  # noqa: ANN001, ANN202
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    # -- the proxy (on its own loop) ---------------------------------------------------
    async def _start(self) -> int:
        self._open.set()
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _client(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        u_writer = None
        try:
            await self._open.wait()     # silent: the client waits for an answer that never comes
            if isinstance(self.upstream, tuple):
                u_reader, u_writer = await asyncio.open_connection(*self.upstream)
            else:
                u_reader, u_writer = await asyncio.open_unix_connection(str(Path(self.upstream)))
            await asyncio.gather(self._pipe(c_reader, u_writer), self._pipe(u_reader, c_writer))
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for w in (c_writer, u_writer):
                if w is not None:
                    w.close()
            self._tasks.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._open.wait()     # silent: keep what came, pass nothing on
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
