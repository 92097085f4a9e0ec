"""The replica worker streams an entity's chunks (HEAD, CHUNK..., END) and, on a CANCEL
frame, tells the entity to stop generating."""

from __future__ import annotations

import asyncio
import contextvars  # noqa: F401 - used in annotations
import json
import threading
import time

from ladle.replica import protocol as p
from ladle.replica.worker import Worker
from ladle.schemas.errors import ApiError


class Streamy:
    streams = True

    def __init__(self) -> None:
        self.produced = 0
        self.stopped = threading.Event()     # the generator ended: told to stop, or closed

    def predict(self, meta, body, cancel=None):
        req = json.loads(body)
        if req.get("bad"):
            raise ApiError("INVALID_PARAMETER_VALUE", "messages: bad", 400)
        if not req.get("stream"):
            return 200, "application/json", b'{"ok": true}'

        def gen():
            try:
                for i in range(req["n"]):
                    if cancel is not None and cancel.is_set():
                        return
                    self.produced += 1
                    yield f"data: {i}\n\n".encode()
                    time.sleep(req.get("sleep", 0))
                yield b"data: [DONE]\n\n"
            finally:
                self.stopped.set()

        return 200, "text/event-stream", gen()


async def _serve(tmp_path, entity):
    sock = str(tmp_path / "w.sock")
    server = await asyncio.start_unix_server(Worker(entity, 2).serve_connection, path=sock)
    reader, writer = await asyncio.open_unix_connection(sock)
    return server, reader, writer


async def _frames(reader, rid, until=p.END):
    out = []
    while True:
        r, kind, payload = await asyncio.wait_for(p.read_frame(reader), 10)
        assert r == rid
        out.append((kind, payload))
        if kind == until:
            return out


async def test_stream_head_chunks_end(tmp_path):
    server, reader, writer = await _serve(tmp_path, Streamy())
    writer.write(p.frame(1, p.REQUEST, p.request_payload({}, json.dumps({"stream": True, "n": 3}).encode())))
    frames = await _frames(reader, 1)
    assert frames[0][0] == p.HEAD and json.loads(frames[0][1]) == {"status": 200, "content_type": "text/event-stream"}
    assert [f[1] for f in frames[1:-1]] == [b"data: 0\n\n", b"data: 1\n\n", b"data: 2\n\n", b"data: [DONE]\n\n"]
    writer.write(p.frame(2, p.REQUEST, p.request_payload({}, json.dumps({"bad": True}).encode())))
    frames = await _frames(reader, 2)
    assert json.loads(frames[0][1])["status"] == 400 and b"messages: bad" in frames[1][1]
    writer.close()
    server.close()


async def test_cancel_stops_generation(tmp_path):
    ent = Streamy()
    server, reader, writer = await _serve(tmp_path, ent)
    body = json.dumps({"stream": True, "n": 1000, "sleep": 0.02}).encode()
    writer.write(p.frame(7, p.REQUEST, p.request_payload({}, body)))
    await _frames(reader, 7, until=p.CHUNK)
    writer.write(p.frame(7, p.CANCEL))
    # 1000 chunks 20 ms apart would take 20 s: the generator must end within 5 s of the CANCEL
    await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, ent.stopped.wait, 5), 6)
    assert ent.stopped.is_set() and ent.produced < 1000    # it ended (its finally ran): nothing more comes
    writer.close()
    server.close()


VAR: "contextvars.ContextVar[str]"


class ContextGen:
    """Sets a context variable around its chunks, like MLflow's predict_stream wrapper."""

    streams = True

    def predict(self, meta, body, cancel=None):
        import contextvars

        global VAR
        VAR = contextvars.ContextVar("v")

        def gen():
            token = VAR.set("x")
            try:
                for i in range(3):
                    yield f"data: {i}\n\n".encode()
            finally:
                VAR.reset(token)   # raises if resumed in another context

        return 200, "text/event-stream", gen()


async def test_stream_resumes_in_one_context(tmp_path):
    server, reader, writer = await _serve(tmp_path, ContextGen())
    writer.write(p.frame(3, p.REQUEST, p.request_payload({}, b"{}")))
    frames = await _frames(reader, 3)
    assert [f[1] for f in frames[1:-1]] == [b"data: 0\n\n", b"data: 1\n\n", b"data: 2\n\n"]
    writer.close()
    server.close()
