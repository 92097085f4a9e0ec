"""Durable state: endpoints (desired spec + status), tokens, permissions, groups, secrets
and their ACLs.

SQLite by default through SQLAlchemy Core; PostgreSQL (LADLE_DATABASE_URL) with the same
code, shared by several ladle servers. Every write is one transaction, committed before the
API acknowledges it, and bumps one state version in the same transaction: a server learns
that another one changed something by reading that single row (control/sync.py); on
PostgreSQL the same transaction NOTIFYs `ladle_state`, so listeners hear of it at commit.

Endpoint records carry a revision: a save whose record is stale (someone saved since it was
read) changes nothing and raises StaleRecord, so no writer silently undoes another's change.
The reconciler runs on one server at a time: the holder of the `reconciler` lease, whose
expiry is reckoned by the database's clock (servers' clocks may disagree).

Nothing here may run on the event loop: async code calls the store through `Store.call`,
which runs the call on the store's own bounded thread pool. A thread pool rather than an
async driver because the store is plain SQLAlchemy Core shared with synchronous callers
(CLI tools, tests, the reconciler's threads) and SQLite has no async driver worth the name;
a pool of its own (not the loop's default executor) because a database that stops answering
must not take the threads that DNS lookups and file I/O need. Every wait on the database is
bounded (connect, statement, pool checkout, and on PostgreSQL a client-side bound on each
answer: a host that accepts connections and never answers fails the call, it does not hang).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator, TypeVar

from sqlalchemy import create_engine, delete, event, insert, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from ladle.control.store_access import AccessRows, TokenRecord
from ladle.control.store_apps import AppRows
from ladle.control.store_endpoints import EndpointRecord, EndpointRows, StaleRecord
from ladle.control.store_engine import (
    DbTimeouts, add_missing_columns, connect_bounded, db_now_ms, sqlite_pragmas,
)
from ladle.control.store_oauth import OAuthRows
from ladle.control.store_secrets import SecretRows
from ladle.control.store_tables import leases_t, metadata, state_t

__all__ = ["DatabaseBusy", "DbTimeouts", "EndpointRecord", "StaleRecord", "Store", "TokenRecord",
           "UNAVAILABLE"]

T = TypeVar("T")
STATE_CHANNEL = "ladle_state"   # the PostgreSQL channel every state-version bump notifies


class DatabaseBusy(SQLAlchemyError):
    """Too many store calls are already waiting on the database (it is slow or away)."""

# What "the database cannot answer right now" looks like to callers (the API answers 503).
UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, PoolTimeout, DatabaseBusy)


class Store(EndpointRows, AccessRows, SecretRows, OAuthRows, AppRows):
    """The database, made of one row class per resource (store_endpoints, store_access,
    store_secrets, store_oauth, store_apps) over the tables of store_tables."""

    def __init__(self, url: str, timeouts: DbTimeouts | None = None) -> None:
        self.url = url
        self.timeouts = t = timeouts or DbTimeouts()
        if url.startswith("sqlite"):
            self.engine: Engine = create_engine(url, pool_timeout=t.pool_s,
                                                connect_args={"timeout": t.statement_s})
            event.listen(self.engine, "connect", sqlite_pragmas)
            threads = 8
        else:
            self.engine = create_engine(
                url, pool_pre_ping=True, pool_size=10, max_overflow=20, pool_timeout=t.pool_s,
                connect_args={"connect_timeout": max(1, math.ceil(t.connect_s)),
                              "options": f"-c statement_timeout={int(t.statement_s * 1000)}"})
            if self.engine.dialect.driver == "psycopg":
                event.listen(self.engine, "do_connect", functools.partial(connect_bounded, t.answer_s))
            threads = 30   # one per pooled connection (pool_size + max_overflow)
        self._threads = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ladle-store")
        self._waiting = 0
        self._max_waiting = threads * 4
        with self.engine.begin() as c:
            if self.shared:   # servers starting at once: one creates the schema, the others wait
                c.execute(text("SELECT pg_advisory_xact_lock(7410221)"))
            metadata.create_all(c)
            add_missing_columns(c)
            try:
                with c.begin_nested():
                    c.execute(insert(state_t).values(id=1, version=0))
            except IntegrityError:
                pass

    async def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run a blocking store call (any callable that uses the store) on the store's threads.
        When too many calls already wait (the database is slow or away) it fails at once with
        DatabaseBusy instead of queueing without bound."""
        if self._waiting >= self._max_waiting:
            raise DatabaseBusy(f"{self._waiting} store calls are already waiting on the database")
        self._waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._threads, functools.partial(fn, *args, **kwargs))
        finally:
            self._waiting -= 1

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        self.engine.dispose()

    def listen_url(self) -> str | None:
        """A libpq URL of the shared database (for a LISTEN connection); None on SQLite."""
        if not self.shared:
            return None
        return self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    @property
    def shared(self) -> bool:
        """Whether other servers may use this database too (anything but SQLite)."""
        return not self.url.startswith("sqlite")

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction that also bumps the state version (rolled back together)."""
        with self.engine.begin() as c:
            yield c
            c.execute(update(state_t).where(state_t.c.id == 1).values(version=state_t.c.version + 1))
            if self.shared:   # PostgreSQL delivers it to every listening server at commit
                c.execute(text(f"NOTIFY {STATE_CHANNEL}"))

    def version(self) -> int:
        with self.engine.connect() as c:
            return int(c.execute(select(state_t.c.version).where(state_t.c.id == 1)).scalar_one())

    # -- leases ------------------------------------------------------------------------
    def hold_lease(self, name: str, holder: str, ttl_ms: int) -> bool:
        """Take or renew lease `name` for `holder`; True while holder has it. Expiry is in the
        database's clock, read in the same transaction: every server compares against one
        clock, however far their own clocks drift apart."""
        with self.engine.begin() as c:
            now_ms = int(c.execute(db_now_ms(c)).scalar_one())
            got = c.execute(update(leases_t).where(
                (leases_t.c.name == name)
                & ((leases_t.c.holder == holder) | (leases_t.c.expires_ms < now_ms))
            ).values(holder=holder, expires_ms=now_ms + ttl_ms)).rowcount
            if got:
                return True
            try:
                with c.begin_nested():
                    c.execute(insert(leases_t).values(name=name, holder=holder, expires_ms=now_ms + ttl_ms))
                return True
            except IntegrityError:
                return False

    def release_lease(self, name: str, holder: str) -> None:
        with self.engine.begin() as c:
            c.execute(delete(leases_t).where((leases_t.c.name == name) & (leases_t.c.holder == holder)))
