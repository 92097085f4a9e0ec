"""Durable state: endpoints (desired spec + status), tokens, permissions, groups, secrets
and their ACLs.

SQLite by default through SQLAlchemy Core; PostgreSQL (LADLE_DATABASE_URL) with the same
code, shared by several ladle servers. Every write is one transaction, committed before the
API acknowledges it, and bumps one state version in the same transaction: a server learns
that another one changed something by reading that single row (control/sync.py).

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
import dataclasses
import functools
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, TypeVar

import orjson
from sqlalchemy import (
    BigInteger, Boolean, Column, Integer, MetaData, String, Table, Text, create_engine, delete,
    UniqueConstraint, event, insert, inspect, select, text, update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

T = TypeVar("T")

metadata = MetaData()

endpoints_t = Table(
    "endpoints", metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(64), unique=True, nullable=False),
    Column("creator", String(256), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("meta", Text, nullable=False),          # description, tags, ai_gateway, ... (JSON)
    Column("active", Text, nullable=True),         # the serving config (JSON) or NULL
    Column("pending", Text, nullable=True),        # the config being rolled out (JSON) or NULL
    Column("config_update", String(32), nullable=False),
    Column("next_version", Integer, nullable=False),
    Column("revision", Integer, nullable=False, default=0),
)

tokens_t = Table(
    "tokens", metadata,
    Column("id", String(32), primary_key=True),
    Column("hash", String(64), unique=True, nullable=False),
    Column("principal_type", String(32), nullable=False),   # user | service_principal
    Column("principal", String(256), nullable=False),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("comment", Text, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("expiry_ms", BigInteger, nullable=False),        # -1: never
    Column("created_by", String(256), nullable=False),
)

acl_t = Table(
    "acl", metadata,
    Column("endpoint_id", String(32), primary_key=True),
    Column("principal_type", String(32), primary_key=True),  # user_name | group_name | service_principal_name
    Column("principal", String(256), primary_key=True),
    Column("level", String(16), nullable=False),
)

registry_acl_t = Table(   # grants on MLflow experiments and registered models (control/registry_acl.py)
    "registry_acl", metadata,
    Column("object_type", String(32), primary_key=True),     # experiments | registered-models
    Column("object_id", Text, primary_key=True),             # experiment id | model name (any length)
    Column("principal_type", String(32), primary_key=True),  # user_name | group_name | service_principal_name
    Column("principal", String(256), primary_key=True),
    Column("level", String(40), nullable=False),             # IS_OWNER marks the creator
)

group_members_t = Table(
    "group_members", metadata,
    Column("group_name", String(256), primary_key=True),
    Column("member", String(256), primary_key=True),         # "" marks an empty group
    Column("member_type", String(32), nullable=False),       # user | service_principal | "" (marker)
)

principals_t = Table(   # users and service principals made through SCIM (control/principals.py)
    "principals", metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(32), nullable=False),              # user | service_principal
    Column("name", String(256), nullable=False),             # userName | applicationId
    Column("display_name", String(256), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_ms", BigInteger, nullable=False),
    UniqueConstraint("kind", "name"),
)

secret_scopes_t = Table(
    "secret_scopes", metadata,
    Column("name", String(128), primary_key=True),
    Column("creator", String(256), nullable=False),
)

secret_acls_t = Table(   # who may use a secret scope: READ < WRITE < MANAGE (control/secret_acls.py)
    "secret_acls", metadata,
    Column("scope", String(128), primary_key=True),
    Column("principal", String(256), primary_key=True),      # a user, service principal or group name
    Column("permission", String(16), nullable=False),
)

secrets_t = Table(
    "secrets", metadata,
    Column("scope", String(128), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", Text, nullable=False),                   # sealed (Fernet), never plaintext
    Column("updated_ms", BigInteger, nullable=False),
)

state_t = Table(          # one row: bumped by every write, read by every server each second
    "state_version", metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
)

leases_t = Table(
    "leases", metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
)


class StaleRecord(Exception):
    """The endpoint changed (or went away) since this copy of it was read."""


class DatabaseBusy(SQLAlchemyError):
    """Too many store calls are already waiting on the database (it is slow or away)."""


# What "the database cannot answer right now" looks like to callers (the API answers 503).
UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, PoolTimeout, DatabaseBusy)


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


@dataclass
class EndpointRecord:
    id: str
    name: str
    creator: str
    created_ms: int
    updated_ms: int
    meta: dict[str, Any] = field(default_factory=dict)
    active: dict[str, Any] | None = None
    pending: dict[str, Any] | None = None
    config_update: str = "NOT_UPDATING"
    next_version: int = 1
    revision: int = 0

    def copy(self) -> "EndpointRecord":
        return EndpointRecord(**orjson.loads(orjson.dumps(dataclasses.asdict(self))))


@dataclass
class TokenRecord:
    id: str
    hash: str
    principal_type: str
    principal: str
    is_admin: bool
    comment: str | None
    created_ms: int
    expiry_ms: int
    created_by: str


def _dumps(v: Any) -> str | None:
    return None if v is None else orjson.dumps(v).decode()


def _loads(v: str | None) -> Any:
    return None if v is None else orjson.loads(v)


class Store:
    def __init__(self, url: str, timeouts: DbTimeouts | None = None) -> None:
        self.url = url
        self.timeouts = t = timeouts or DbTimeouts()
        if url.startswith("sqlite"):
            self.engine: Engine = create_engine(url, pool_timeout=t.pool_s,
                                                connect_args={"timeout": t.statement_s})
            event.listen(self.engine, "connect", _sqlite_pragmas)
            threads = 8
        else:
            self.engine = create_engine(
                url, pool_pre_ping=True, pool_size=10, max_overflow=20, pool_timeout=t.pool_s,
                connect_args={"connect_timeout": max(1, math.ceil(t.connect_s)),
                              "options": f"-c statement_timeout={int(t.statement_s * 1000)}"})
            if self.engine.dialect.driver == "psycopg":
                event.listen(self.engine, "do_connect", functools.partial(_connect_bounded, t.answer_s))
            threads = 30   # one per pooled connection (pool_size + max_overflow)
        self._threads = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ladle-store")
        self._waiting = 0
        self._max_waiting = threads * 4
        metadata.create_all(self.engine)
        with self.engine.begin() as c:
            _add_missing_columns(c)
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

    def version(self) -> int:
        with self.engine.connect() as c:
            return int(c.execute(select(state_t.c.version).where(state_t.c.id == 1)).scalar_one())

    # -- leases ------------------------------------------------------------------------
    def hold_lease(self, name: str, holder: str, ttl_ms: int) -> bool:
        """Take or renew lease `name` for `holder`; True while holder has it. Expiry is in the
        database's clock, read in the same transaction: every server compares against one
        clock, however far their own clocks drift apart."""
        with self.engine.begin() as c:
            now_ms = int(c.execute(_db_now_ms(c)).scalar_one())
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

    # -- endpoints ---------------------------------------------------------------------
    def _row_to_endpoint(self, r: Any) -> EndpointRecord:
        return EndpointRecord(
            id=r.id, name=r.name, creator=r.creator, created_ms=r.created_ms,
            updated_ms=r.updated_ms, meta=_loads(r.meta) or {}, active=_loads(r.active),
            pending=_loads(r.pending), config_update=r.config_update, next_version=r.next_version,
            revision=r.revision,
        )

    def get_endpoint(self, name: str) -> EndpointRecord | None:
        with self.engine.connect() as c:
            r = c.execute(select(endpoints_t).where(endpoints_t.c.name == name)).first()
        return self._row_to_endpoint(r) if r else None

    def get_endpoint_by_id(self, endpoint_id: str) -> EndpointRecord | None:
        with self.engine.connect() as c:
            r = c.execute(select(endpoints_t).where(endpoints_t.c.id == endpoint_id)).first()
        return self._row_to_endpoint(r) if r else None

    def list_endpoints(self) -> list[EndpointRecord]:
        with self.engine.connect() as c:
            rows = c.execute(select(endpoints_t).order_by(endpoints_t.c.name)).all()
        return [self._row_to_endpoint(r) for r in rows]

    def insert_endpoint(self, rec: EndpointRecord) -> bool:
        """False (nothing written) when an endpoint of that name exists."""
        try:
            with self._write() as c:
                c.execute(insert(endpoints_t).values(**self._endpoint_values(rec)))
            return True
        except IntegrityError:
            return False

    def save_endpoint(self, rec: EndpointRecord) -> None:
        """Write `rec` if nobody saved the endpoint since it was read; else StaleRecord."""
        with self._write() as c:
            n = c.execute(
                update(endpoints_t)
                .where((endpoints_t.c.id == rec.id) & (endpoints_t.c.revision == rec.revision))
                .values(**{**self._endpoint_values(rec), "revision": rec.revision + 1})
            ).rowcount
            if n != 1:
                raise StaleRecord(rec.name)
        rec.revision += 1

    def delete_endpoint(self, endpoint_id: str) -> None:
        with self._write() as c:
            c.execute(delete(endpoints_t).where(endpoints_t.c.id == endpoint_id))
            c.execute(delete(acl_t).where(acl_t.c.endpoint_id == endpoint_id))

    @staticmethod
    def _endpoint_values(rec: EndpointRecord) -> dict[str, Any]:
        return {
            "id": rec.id, "name": rec.name, "creator": rec.creator, "created_ms": rec.created_ms,
            "updated_ms": rec.updated_ms, "meta": _dumps(rec.meta), "active": _dumps(rec.active),
            "pending": _dumps(rec.pending), "config_update": rec.config_update,
            "next_version": rec.next_version, "revision": rec.revision,
        }

    # -- tokens ------------------------------------------------------------------------
    def insert_token(self, tok: TokenRecord) -> None:
        with self._write() as c:
            c.execute(insert(tokens_t).values(**dataclasses.asdict(tok)))

    def list_tokens(self) -> list[TokenRecord]:
        with self.engine.connect() as c:
            rows = c.execute(select(tokens_t).order_by(tokens_t.c.created_ms)).all()
        return [TokenRecord(**r._mapping) for r in rows]

    def token_by_hash(self, token_hash: str) -> TokenRecord | None:
        with self.engine.connect() as c:
            r = c.execute(select(tokens_t).where(tokens_t.c.hash == token_hash)).first()
        return TokenRecord(**r._mapping) if r else None

    def delete_token(self, token_id: str) -> bool:
        with self._write() as c:
            return c.execute(delete(tokens_t).where(tokens_t.c.id == token_id)).rowcount > 0

    # -- permissions -------------------------------------------------------------------
    def acl(self, endpoint_id: str) -> list[tuple[str, str, str]]:
        with self.engine.connect() as c:
            rows = c.execute(select(acl_t).where(acl_t.c.endpoint_id == endpoint_id)).all()
        return [(r.principal_type, r.principal, r.level) for r in rows]

    def all_acls(self) -> Iterator[tuple[str, str, str, str]]:
        with self.engine.connect() as c:
            rows = c.execute(select(acl_t)).all()
        return iter([(r.endpoint_id, r.principal_type, r.principal, r.level) for r in rows])

    def replace_acl(self, endpoint_id: str, entries: list[tuple[str, str, str]]) -> None:
        with self._write() as c:
            c.execute(delete(acl_t).where(acl_t.c.endpoint_id == endpoint_id))
            for ptype, principal, level in entries:
                c.execute(insert(acl_t).values(
                    endpoint_id=endpoint_id, principal_type=ptype, principal=principal, level=level))

    # -- registry permissions (MLflow experiments and registered models) ---------------
    def registry_acl_rows(self) -> list[tuple[str, str, str, str, str]]:
        with self.engine.connect() as c:
            rows = c.execute(select(registry_acl_t)).all()
        return [(r.object_type, r.object_id, r.principal_type, r.principal, r.level) for r in rows]

    def replace_registry_acl(self, object_type: str, object_id: str,
                             entries: list[tuple[str, str, str]]) -> None:
        """Every grant on the object, replaced in one transaction (none: forgotten)."""
        key = (registry_acl_t.c.object_type == object_type) & (registry_acl_t.c.object_id == object_id)
        with self._write() as c:
            c.execute(delete(registry_acl_t).where(key))
            for ptype, principal, level in entries:
                c.execute(insert(registry_acl_t).values(
                    object_type=object_type, object_id=object_id, principal_type=ptype,
                    principal=principal, level=level))

    def rename_registry_acl(self, object_type: str, old_id: str, new_id: str) -> None:
        with self._write() as c:
            c.execute(delete(registry_acl_t).where(
                (registry_acl_t.c.object_type == object_type) & (registry_acl_t.c.object_id == new_id)))
            c.execute(update(registry_acl_t).where(
                (registry_acl_t.c.object_type == object_type) & (registry_acl_t.c.object_id == old_id)
            ).values(object_id=new_id))

    # -- groups (ladle-managed; members are principal names) ------------------------------
    def group_rows(self) -> list[tuple[str, str, str]]:
        with self.engine.connect() as c:
            rows = c.execute(select(group_members_t)).all()
        return [(r.group_name, r.member, r.member_type) for r in rows]

    def add_group_row(self, group: str, member: str, member_type: str) -> None:
        with self._write() as c:
            c.execute(delete(group_members_t).where(
                (group_members_t.c.group_name == group) & (group_members_t.c.member == member)))
            c.execute(insert(group_members_t).values(group_name=group, member=member,
                                                     member_type=member_type))

    def delete_group_rows(self, group: str, member: str | None = None) -> int:
        cond = group_members_t.c.group_name == group
        if member is not None:
            cond = cond & (group_members_t.c.member == member)
        with self._write() as c:
            return c.execute(delete(group_members_t).where(cond)).rowcount

    # -- principals (SCIM users and service principals) ----------------------------------
    def principal_rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(select(principals_t)).all()]

    def insert_principal(self, row: dict[str, Any]) -> bool:
        """False when one of that kind and name exists already."""
        try:
            with self._write() as c:
                c.execute(insert(principals_t).values(**row))
            return True
        except IntegrityError:
            return False

    def delete_principal(self, kind: str, name: str) -> None:
        """The row, its tokens, its group memberships and its grants (endpoints, registry,
        secret scopes), in one transaction: a principal made again under the same name starts
        with nothing."""
        acl_type = "service_principal_name" if kind == "service_principal" else "user_name"
        with self._write() as c:
            c.execute(delete(principals_t).where((principals_t.c.kind == kind) & (principals_t.c.name == name)))
            c.execute(delete(tokens_t).where((tokens_t.c.principal_type == kind) & (tokens_t.c.principal == name)))
            c.execute(delete(group_members_t).where(
                (group_members_t.c.member == name) & (group_members_t.c.member_type == kind)))
            c.execute(delete(acl_t).where((acl_t.c.principal_type == acl_type) & (acl_t.c.principal == name)))
            c.execute(delete(registry_acl_t).where(
                (registry_acl_t.c.principal_type == acl_type) & (registry_acl_t.c.principal == name)))
            # secret ACL principals carry no type: a group of the same name keeps its entries
            if c.execute(select(group_members_t.c.group_name)
                         .where(group_members_t.c.group_name == name).limit(1)).first() is None:
                c.execute(delete(secret_acls_t).where(secret_acls_t.c.principal == name))

    # -- secrets (values arrive sealed; control/secrets.py seals and unseals) -------------
    def secret_scopes(self) -> dict[str, str]:
        with self.engine.connect() as c:
            return {r.name: r.creator for r in c.execute(select(secret_scopes_t)).all()}

    def insert_scope(self, name: str, creator: str, manager: str | None = None) -> bool:
        """The scope and, when `manager` is given, its first ACL entry (manager: MANAGE)."""
        try:
            with self._write() as c:
                c.execute(insert(secret_scopes_t).values(name=name, creator=creator))
                if manager is not None:
                    c.execute(insert(secret_acls_t).values(scope=name, principal=manager, permission="MANAGE"))
            return True
        except IntegrityError:
            return False

    def delete_scope(self, name: str) -> None:
        with self._write() as c:
            c.execute(delete(secrets_t).where(secrets_t.c.scope == name))
            c.execute(delete(secret_acls_t).where(secret_acls_t.c.scope == name))
            c.execute(delete(secret_scopes_t).where(secret_scopes_t.c.name == name))

    def secret_acl_rows(self) -> list[tuple[str, str, str]]:
        """(scope, principal, permission) for every scope."""
        with self.engine.connect() as c:
            rows = c.execute(select(secret_acls_t)).all()
        return [(r.scope, r.principal, r.permission) for r in rows]

    def put_secret_acl(self, scope: str, principal: str, permission: str) -> bool:
        """Create or overwrite; False (nothing written) when the scope does not exist."""
        for attempt in (1, 2):     # 2: another server inserted the same entry at the same time
            try:
                with self._write() as c:
                    if c.execute(select(secret_scopes_t.c.name)
                                 .where(secret_scopes_t.c.name == scope)).first() is None:
                        return False
                    c.execute(delete(secret_acls_t).where(
                        (secret_acls_t.c.scope == scope) & (secret_acls_t.c.principal == principal)))
                    c.execute(insert(secret_acls_t).values(scope=scope, principal=principal,
                                                           permission=permission))
                return True
            except IntegrityError:
                if attempt == 2:
                    raise
        return True

    def delete_secret_acl(self, scope: str, principal: str) -> bool:
        with self._write() as c:
            return c.execute(delete(secret_acls_t).where(
                (secret_acls_t.c.scope == scope) & (secret_acls_t.c.principal == principal))).rowcount > 0

    def put_secret(self, scope: str, key: str, sealed: str, now_ms: int) -> None:
        with self._write() as c:
            c.execute(delete(secrets_t).where((secrets_t.c.scope == scope) & (secrets_t.c.key == key)))
            c.execute(insert(secrets_t).values(scope=scope, key=key, value=sealed, updated_ms=now_ms))

    def secrets_of(self, scope: str) -> dict[str, tuple[str, int]]:
        with self.engine.connect() as c:
            rows = c.execute(select(secrets_t).where(secrets_t.c.scope == scope)).all()
        return {r.key: (r.value, r.updated_ms) for r in rows}

    def all_secrets(self) -> dict[tuple[str, str], str]:
        """(scope, key) -> sealed value, for every secret."""
        with self.engine.connect() as c:
            return {(r.scope, r.key): r.value
                    for r in c.execute(select(secrets_t.c.scope, secrets_t.c.key, secrets_t.c.value))}

    def delete_secret(self, scope: str, key: str) -> bool:
        with self._write() as c:
            return c.execute(delete(secrets_t).where(
                (secrets_t.c.scope == scope) & (secrets_t.c.key == key))).rowcount > 0


def _add_missing_columns(c: Connection) -> None:
    """Databases made by an earlier ladle lack the endpoint revision column."""
    have = {col["name"] for col in inspect(c).get_columns("endpoints")}
    if "revision" not in have:
        c.execute(text("ALTER TABLE endpoints ADD COLUMN revision INTEGER NOT NULL DEFAULT 0"))


def _db_now_ms(c: Connection) -> Any:
    """The database server's clock in milliseconds since 1970, as a SELECT."""
    if c.dialect.name == "sqlite":
        return text("SELECT CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)")
    return text("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)")


def _connect_bounded(answer_s: float, _dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
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


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.close()
