"""The gateway <-> replica wire protocol: length-prefixed frames on a Unix socket.

Frame: 9-byte header `!IIB` (payload length, request id, kind) then the payload.
One connection carries many requests at once (ids multiplex them); a response is
HEAD (JSON: status, content_type), zero or more CHUNK, then END. A unary answer is a
stream of one chunk, so streaming is never a special case. Stdlib only: this module is
imported by replica processes that may run in a model's own virtual environment.
"""

from __future__ import annotations

import asyncio
import json
import struct

VERSION = 1
HEADER = struct.Struct("!IIB")

REQUEST = 1     # payload: 4-byte meta length, meta JSON, body bytes
HEAD = 2        # payload: JSON {"status": int, "content_type": str}
CHUNK = 3       # payload: body bytes
END = 4         # payload: empty
CANCEL = 5      # gateway -> replica: stop working on this id
PING = 6
PONG = 7        # payload: JSON {"version": VERSION, "pid": int}
SPANS = 8       # replica -> gateway, before END: JSON list of finished spans (replica/tracing.py)

META = struct.Struct("!I")


def frame(req_id: int, kind: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(len(payload), req_id, kind) + payload


def request_payload(meta: dict, body: bytes) -> bytes:
    m = json.dumps(meta, separators=(",", ":")).encode()
    return META.pack(len(m)) + m + body


def split_request(payload: bytes) -> tuple[dict, bytes]:
    (n,) = META.unpack_from(payload)
    return json.loads(payload[4 : 4 + n]), payload[4 + n :]


def unary_reply(req_id: int, status: int, content_type: str, body: bytes,
                spans: bytes | None = None) -> bytes:
    head = json.dumps({"status": status, "content_type": content_type}).encode()
    traced = frame(req_id, SPANS, spans) if spans else b""
    return frame(req_id, HEAD, head) + frame(req_id, CHUNK, body) + traced + frame(req_id, END)


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    header = await reader.readexactly(HEADER.size)
    length, req_id, kind = HEADER.unpack(header)
    payload = await reader.readexactly(length) if length else b""
    return req_id, kind, payload
