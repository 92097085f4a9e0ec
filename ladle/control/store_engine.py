"""Opening the store's database: bounds on every wait (connect, statement, pool, and on
PostgreSQL each answer), SQLite's pragmas, the database's clock, columns added since."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection


@dataclass(frozen=True)


class DbTimeouts:
    """Bounds on every wait on the database, in seconds."""
    connect_s: float = 5.0      # opening a connection (PostgreSQL connect_timeout)
    statement_s: float = 5.0    # one statement (PostgreSQL statement_timeout; SQLite busy timeout)
    pool_s: float = 5.0         # waiting for a free pooled connection

    @property
    def answer_s(self) -> float:
        """Client-side bound on one answer from PostgreSQL: past the server's own statement
        timeout, so a live server cancels first and a silent one is given up on."""
        return self.statement_s + 1.0


def add_missing_columns(c: Connection) -> None:
    """Databases made by an earlier ladle lack the endpoint revision column."""
    have = {col["name"] for col in inspect(c).get_columns("endpoints")}
    if "revision" not in have:
        c.execute(text("ALTER TABLE endpoints ADD COLUMN revision INTEGER NOT NULL DEFAULT 0"))


def db_now_ms(c: Connection) -> Any:
    """The database server's clock in milliseconds since 1970, as a SELECT."""
    if c.dialect.name == "sqlite":
        return text("SELECT CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)")
    return text("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)")


def connect_bounded(answer_s: float, _dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
    """SQLAlchemy's do_connect hook: a psycopg connection whose every wait for an answer is
    bounded (see _bounded_connection_class)."""
    conn = _bounded_connection_class().connect(*cargs, **cparams)
    conn.ladle_answer_s = answer_s
    return conn


@functools.cache


def _bounded_connection_class() -> type:
    """psycopg.Connection whose waits for the server time out after `ladle_answer_s`.

    PostgreSQL's statement_timeout is enforced by the server, so it cannot help when the
    server (or something in front of it) accepts connections and never answers; libpq has no
    client-side query timeout and TCP keepalives are answered by a silent peer's kernel.
    psycopg's `Connection.wait` takes a timeout but is called without one; we pass one, and on
    expiry close the connection (its protocol state is unknown) so SQLAlchemy discards it."""
    import psycopg

    class BoundedConnection(psycopg.Connection):   # type: ignore[misc,type-arg]
        ladle_answer_s: float = 6.0

        def wait(self, gen: Any, *args: Any, **kwargs: Any) -> Any:
            if len(args) < 2 and kwargs.get("timeout") is None:
                kwargs["timeout"] = self.ladle_answer_s
                if not args and "interval" not in kwargs:
                    # psycopg wakes every 0.1 s to let Ctrl-C through, which only the main
                    # thread gets; a store thread stuck on a silent host would take the GIL
                    # from the event loop ten times a second for nothing.
                    kwargs["interval"] = kwargs["timeout"]
            try:
                return super().wait(gen, *args, **kwargs)
            except psycopg.errors.OperationalError as e:
                if type(e).__name__ == "_WaitTimeout":
                    self.pgconn.finish()
                    raise psycopg.OperationalError(
                        f"the database did not answer within {kwargs.get('timeout')} s; "
                        "connection closed") from e
                raise

    return BoundedConnection


def sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.close()
