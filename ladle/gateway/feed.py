"""The link between the server process and a gateway worker process: framed messages over a
socket pair made by the server before it starts the worker (so no other process can reach
it), both ways, each a one-way note or a question with an answer.

Frames are a 4-byte length and a pickled `(id, kind, payload)`: both ends are this server's
own processes, joined by a socket pair nobody else holds, so pickle carries the routing
view's dataclasses as they are. Notes are handled in the order they arrive (a worker's
counted requests before its answer to a drain); a handler that returns an awaitable runs as
a task and its answer goes when it is done.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import pickle
import socket
import struct
from typing import Any, Callable

log = logging.getLogger("ladle.feed")
_LEN = struct.Struct("!I")
REPLY = "_reply"
ERROR = "_error"
Handler = Callable[[str, Any], Any]


class LinkClosed(Exception):
    """The process at the other end is gone."""


class Link:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: Handler) -> None:
        self.reader, self.writer, self.handler = reader, writer, handler
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future] = {}
        self._tasks: set[asyncio.Task] = set()
        self.closed = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._read_loop())

    @classmethod
    async def open(cls, sock: socket.socket, handler: Handler) -> "Link":
        reader, writer = await asyncio.open_connection(sock=sock, limit=2**26)
        return cls(reader, writer, handler)

    def send(self, kind: str, payload: Any = None, rid: int = 0) -> None:
        if self.writer.is_closing():
            return
        data = pickle.dumps((rid, kind, payload), protocol=pickle.HIGHEST_PROTOCOL)
        self.writer.write(_LEN.pack(len(data)) + data)

    async def ask(self, kind: str, payload: Any = None, timeout: float | None = None) -> Any:
        if self.closed.is_set():
            raise LinkClosed(kind)
        rid = next(self._ids)
        fut = self._waiting[rid] = asyncio.get_running_loop().create_future()
        try:
            self.send(kind, payload, rid)
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._waiting.pop(rid, None)

    async def close(self) -> None:
        self._task.cancel()
        self.writer.close()
        self._fail_waiting()

    def _fail_waiting(self) -> None:
        self.closed.set()
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(LinkClosed("the other process is gone"))

    async def _read_loop(self) -> None:
        try:
            while True:
                head = await self.reader.readexactly(_LEN.size)
                rid, kind, payload = pickle.loads(await self.reader.readexactly(_LEN.unpack(head)[0]))
                if kind in (REPLY, ERROR):
                    fut = self._waiting.get(rid)
                    if fut is not None and not fut.done():
                        if kind == REPLY:
                            fut.set_result(payload)
                        else:
                            fut.set_exception(payload)
                    continue
                self._dispatch(rid, kind, payload)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self._fail_waiting()

    def _dispatch(self, rid: int, kind: str, payload: Any) -> None:
        try:
            out = self.handler(kind, payload)
        except Exception as e:   # answered to the asker (an ApiError travels as it is)
            if rid:
                self.send(ERROR, e, rid)
            else:
                log.exception("feed note %s failed", kind)
            return
        if inspect.isawaitable(out):
            task = asyncio.ensure_future(out)
            self._tasks.add(task)
            task.add_done_callback(lambda t: self._done(t, rid, kind))
        elif rid:
            self.send(REPLY, out, rid)

    def _done(self, task: asyncio.Task, rid: int, kind: str) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        e = task.exception()
        if e is not None:
            if rid:
                self.send(ERROR, e, rid)
            else:
                log.error("feed note %s failed", kind, exc_info=e)
        elif rid:
            self.send(REPLY, task.result(), rid)
