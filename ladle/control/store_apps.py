"""App rows: one per app (its settings as JSON) and one per deployment. Deleting an app
deletes its deployments in the same transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ladle.control.store_tables import Rows, app_deployments_t, apps_t, dump_json, load_json


class AppRows(Rows):
    def insert_app(self, name: str, app_id: str, data: dict[str, Any], created_ms: int) -> bool:
        """False when an app of that name exists (made meanwhile, here or on another server)."""
        try:
            with self._write() as c:
                c.execute(insert(apps_t).values(name=name, id=app_id, data=dump_json(data),
                                                created_ms=created_ms))
        except IntegrityError:
            return False
        return True

    def app(self, name: str) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            r = c.execute(select(apps_t).where(apps_t.c.name == name)).first()
        return None if r is None else _app(r)

    def apps(self) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            rows = c.execute(select(apps_t).order_by(apps_t.c.name)).all()
        return [_app(r) for r in rows]

    def save_app(self, name: str, data: dict[str, Any]) -> None:
        with self._write() as c:
            c.execute(update(apps_t).where(apps_t.c.name == name).values(data=dump_json(data)))

    def delete_app(self, name: str) -> None:
        with self._write() as c:
            c.execute(delete(app_deployments_t).where(app_deployments_t.c.app == name))
            c.execute(delete(apps_t).where(apps_t.c.name == name))

    # -- deployments -------------------------------------------------------------------------
    def insert_deployment(self, app: str, dep_id: str, data: dict[str, Any], created_ms: int) -> None:
        with self._write() as c:
            c.execute(insert(app_deployments_t).values(id=dep_id, app=app, data=dump_json(data),
                                                       created_ms=created_ms))

    def save_deployment(self, dep_id: str, data: dict[str, Any]) -> None:
        with self._write() as c:
            c.execute(update(app_deployments_t).where(app_deployments_t.c.id == dep_id)
                      .values(data=dump_json(data)))

    def deployment(self, app: str, dep_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            r = c.execute(select(app_deployments_t).where(
                (app_deployments_t.c.id == dep_id) & (app_deployments_t.c.app == app))).first()
        return None if r is None else _dep(r)

    def deployments(self, app: str) -> list[dict[str, Any]]:
        """Newest first."""
        with self.engine.connect() as c:
            rows = c.execute(select(app_deployments_t).where(app_deployments_t.c.app == app)
                             .order_by(app_deployments_t.c.created_ms.desc())).all()
        return [_dep(r) for r in rows]


def _app(r: Any) -> dict[str, Any]:
    return {**load_json(r.data), "name": r.name, "id": r.id, "created_ms": r.created_ms}


def _dep(r: Any) -> dict[str, Any]:
    return {**load_json(r.data), "deployment_id": r.id, "app": r.app, "created_ms": r.created_ms}
