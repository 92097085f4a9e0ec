"""Endpoint rows: the desired spec and status of each serving endpoint, saved by revision."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ladle.control.store_tables import Rows, acl_t, dump_json, endpoints_t, load_json


class StaleRecord(Exception):
    """The endpoint changed (or went away) since this copy of it was read."""


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


class EndpointRows(Rows):
    def _row_to_endpoint(self, r: Any) -> EndpointRecord:
        return EndpointRecord(
            id=r.id, name=r.name, creator=r.creator, created_ms=r.created_ms,
            updated_ms=r.updated_ms, meta=load_json(r.meta) or {}, active=load_json(r.active),
            pending=load_json(r.pending), config_update=r.config_update, next_version=r.next_version,
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
            "updated_ms": rec.updated_ms, "meta": dump_json(rec.meta), "active": dump_json(rec.active),
            "pending": dump_json(rec.pending), "config_update": rec.config_update,
            "next_version": rec.next_version, "revision": rec.revision,
        }
