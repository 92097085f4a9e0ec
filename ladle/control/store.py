"""Durable state: endpoints (desired spec + status), tokens, permissions.

SQLite by default through SQLAlchemy Core (PostgreSQL works with the same code). Every
write is one transaction, committed before the API acknowledges it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterator

import orjson
from sqlalchemy import (
    Boolean, Column, Integer, MetaData, String, Table, Text, create_engine, delete, event,
    insert, select, update,
)
from sqlalchemy.engine import Engine

metadata = MetaData()

endpoints_t = Table(
    "endpoints", metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(64), unique=True, nullable=False),
    Column("creator", String(256), nullable=False),
    Column("created_ms", Integer, nullable=False),
    Column("updated_ms", Integer, nullable=False),
    Column("meta", Text, nullable=False),          # description, tags, ai_gateway, ... (JSON)
    Column("active", Text, nullable=True),         # the serving config (JSON) or NULL
    Column("pending", Text, nullable=True),        # the config being rolled out (JSON) or NULL
    Column("config_update", String(32), nullable=False),
    Column("next_version", Integer, nullable=False),
)

tokens_t = Table(
    "tokens", metadata,
    Column("id", String(32), primary_key=True),
    Column("hash", String(64), unique=True, nullable=False),
    Column("principal_type", String(32), nullable=False),   # user | service_principal
    Column("principal", String(256), nullable=False),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("comment", Text, nullable=True),
    Column("created_ms", Integer, nullable=False),
    Column("expiry_ms", Integer, nullable=False),           # -1: never
    Column("created_by", String(256), nullable=False),
)

acl_t = Table(
    "acl", metadata,
    Column("endpoint_id", String(32), primary_key=True),
    Column("principal_type", String(32), primary_key=True),  # user_name | group_name | service_principal_name
    Column("principal", String(256), primary_key=True),
    Column("level", String(16), nullable=False),
)

group_members_t = Table(
    "group_members", metadata,
    Column("group_name", String(256), primary_key=True),
    Column("member", String(256), primary_key=True),         # "" marks an empty group
    Column("member_type", String(32), nullable=False),       # user | service_principal | "" (marker)
)


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
    def __init__(self, url: str) -> None:
        self.engine: Engine = create_engine(url)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)

    # -- endpoints ---------------------------------------------------------------------
    def _row_to_endpoint(self, r: Any) -> EndpointRecord:
        return EndpointRecord(
            id=r.id, name=r.name, creator=r.creator, created_ms=r.created_ms,
            updated_ms=r.updated_ms, meta=_loads(r.meta) or {}, active=_loads(r.active),
            pending=_loads(r.pending), config_update=r.config_update, next_version=r.next_version,
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

    def insert_endpoint(self, rec: EndpointRecord, creator_acl: bool = True) -> None:
        with self.engine.begin() as c:
            c.execute(insert(endpoints_t).values(**self._endpoint_values(rec)))

    def save_endpoint(self, rec: EndpointRecord) -> None:
        with self.engine.begin() as c:
            c.execute(
                update(endpoints_t).where(endpoints_t.c.id == rec.id).values(**self._endpoint_values(rec))
            )

    def delete_endpoint(self, endpoint_id: str) -> None:
        with self.engine.begin() as c:
            c.execute(delete(endpoints_t).where(endpoints_t.c.id == endpoint_id))
            c.execute(delete(acl_t).where(acl_t.c.endpoint_id == endpoint_id))

    @staticmethod
    def _endpoint_values(rec: EndpointRecord) -> dict[str, Any]:
        return {
            "id": rec.id, "name": rec.name, "creator": rec.creator, "created_ms": rec.created_ms,
            "updated_ms": rec.updated_ms, "meta": _dumps(rec.meta), "active": _dumps(rec.active),
            "pending": _dumps(rec.pending), "config_update": rec.config_update,
            "next_version": rec.next_version,
        }

    # -- tokens ------------------------------------------------------------------------
    def insert_token(self, tok: TokenRecord) -> None:
        with self.engine.begin() as c:
            c.execute(insert(tokens_t).values(**dataclasses.asdict(tok)))

    def list_tokens(self) -> list[TokenRecord]:
        with self.engine.connect() as c:
            rows = c.execute(select(tokens_t).order_by(tokens_t.c.created_ms)).all()
        return [TokenRecord(**r._mapping) for r in rows]

    def delete_token(self, token_id: str) -> bool:
        with self.engine.begin() as c:
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
        with self.engine.begin() as c:
            c.execute(delete(acl_t).where(acl_t.c.endpoint_id == endpoint_id))
            for ptype, principal, level in entries:
                c.execute(insert(acl_t).values(
                    endpoint_id=endpoint_id, principal_type=ptype, principal=principal, level=level))

    # -- groups (ladle-managed; members are principal names) ------------------------------
    def group_rows(self) -> list[tuple[str, str, str]]:
        with self.engine.connect() as c:
            rows = c.execute(select(group_members_t)).all()
        return [(r.group_name, r.member, r.member_type) for r in rows]

    def add_group_row(self, group: str, member: str, member_type: str) -> None:
        with self.engine.begin() as c:
            c.execute(delete(group_members_t).where(
                (group_members_t.c.group_name == group) & (group_members_t.c.member == member)))
            c.execute(insert(group_members_t).values(group_name=group, member=member,
                                                     member_type=member_type))

    def delete_group_rows(self, group: str, member: str | None = None) -> int:
        cond = group_members_t.c.group_name == group
        if member is not None:
            cond = cond & (group_members_t.c.member == member)
        with self.engine.begin() as c:
            return c.execute(delete(group_members_t).where(cond)).rowcount


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.close()
