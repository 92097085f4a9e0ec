"""A real PostgreSQL for tests and benchmarks: pgserver's bundled binaries, a data directory
of the caller's, a Unix socket (no TCP port), stopped at the end; nothing at import time."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Iterator


class Postgres:
    def __init__(self, server) -> None:
        self._server = server
        self.socket_dir = dict(p.split("=", 1) for p in server.get_uri().split("?", 1)[1].split("&"))["host"]

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg 3) of `database`."""
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}"

    @property
    def socket_path(self) -> str:
        """The server's Unix socket (what a proxy in front of it connects to)."""
        return str(next(p for p in Path(self.socket_dir).glob(".s.PGSQL.*") if not p.name.endswith(".lock")))

    @staticmethod
    def via_tcp(url: str, port: int) -> str:
        """`url` (one of this server's databases) reached at 127.0.0.1:`port` instead: a TCP
        proxy in front of the server's socket (ladle.testing.tcp_blackhole)."""
        from sqlalchemy.engine import make_url

        return make_url(url).set(host="127.0.0.1", port=port, query={}).render_as_string(hide_password=False)

    def new_database(self) -> str:
        """A fresh, empty database; returns its SQLAlchemy URL."""
        name = "t_" + uuid.uuid4().hex[:12]
        self._server.psql(f"CREATE DATABASE {name};")
        return self.url(name)


@contextlib.contextmanager
def postgres_server(data_dir: Path) -> Iterator[Postgres]:
    import pgserver

    server = pgserver.get_server(Path(data_dir), cleanup_mode="stop")
    try:
        yield Postgres(server)
    finally:
        server.cleanup()
