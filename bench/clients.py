"""Minimal blocking clients for latency comparisons where the client's own cost must be
the same on both sides: a keep-alive HTTP/1.1 client on a raw socket, and a client of the
replica's framed Unix-socket protocol (ladle/replica/protocol.py)."""

from __future__ import annotations

import re
import socket
import time
from urllib.parse import urlsplit


class RawHttp:
    """One keep-alive HTTP/1.1 connection. Understands Content-Length and chunked bodies."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        u = urlsplit(url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buf = b""

    def _connect(self) -> socket.socket:
        if self.sock is None:
            self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buf = b""
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buf += data

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(marker, 1)
        return head

    def _read_n(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, path: str, body: bytes, headers: dict[str, str]) -> None:
        sock = self._connect()
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                 f"Content-Length: {len(body)}", "Content-Type: application/json"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def read_head(self) -> tuple[int, dict[str, str]]:
        head = self._read_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        hdrs = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        return status, hdrs

    def _chunks(self):
        while True:
            size = int(self._read_until(b"\r\n").split(b";")[0], 16)
            if size == 0:
                self._read_until(b"\r\n")
                return
            data = self._read_n(size)
            self._read_n(2)
            yield data

    def read_body(self, hdrs: dict[str, str]) -> bytes:
        if hdrs.get("transfer-encoding", "").lower() == "chunked":
            out = b"".join(self._chunks())
        else:
            out = self._read_n(int(hdrs.get("content-length", "0")))
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        return out

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        self.send(path, body, headers)
        status, hdrs = self.read_head()
        return status, self.read_body(hdrs)

    def first_event(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, float, bytes]:
        """POST a streaming request; return (status, seconds to the first SSE `data:` bytes,
        whole body). The body is drained so the connection can be reused."""
        t0 = time.perf_counter()
        self.send(path, body, headers)
        status, hdrs = self.read_head()
        if hdrs.get("transfer-encoding", "").lower() != "chunked":
            out = self.read_body(hdrs)
            return status, time.perf_counter() - t0, out
        ttft = None
        parts = []
        for c in self._chunks():
            parts.append(c)
            if ttft is None and b"data:" in b"".join(parts):
                ttft = time.perf_counter() - t0
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        return status, ttft if ttft is not None else time.perf_counter() - t0, b"".join(parts)


def socket_path_from_logs(logs: str) -> str | None:
    """The replica's Unix socket from its log line 'listening on <path>' (the last one)."""
    found = re.findall(r"listening on (\S+?)[;,]?(?:\s|$)", logs)
    return found[-1] if found else None


class ReplicaClient:
    """Calls a replica directly over its framed protocol (one request at a time)."""

    def __init__(self, path: str, timeout: float = 60.0) -> None:
        from ladle.replica import protocol

        self.p = protocol
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 1 << 30   # far from the gateway's ids; ids are per connection anyway

    def close(self) -> None:
        self.sock.close()

    def _read_n(self, n: int) -> bytes:
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("replica closed the connection")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _frame(self) -> tuple[int, int, bytes]:
        length, rid, kind = self.p.HEADER.unpack(self._read_n(self.p.HEADER.size))
        return rid, kind, self._read_n(length) if length else b""

    def call(self, meta: dict, body: bytes) -> tuple[int, bytes]:
        import json

        self.next_id += 1
        rid = self.next_id
        self.sock.sendall(self.p.frame(rid, self.p.REQUEST, self.p.request_payload(meta, body)))
        status, chunks = 0, []
        while True:
            got, kind, payload = self._frame()
            if got != rid:
                continue
            if kind == self.p.HEAD:
                status = int(json.loads(payload)["status"])
            elif kind == self.p.CHUNK:
                chunks.append(payload)
            elif kind == self.p.END:
                return status, b"".join(chunks)
