"""Per-endpoint permissions (CAN_VIEW < CAN_QUERY < CAN_MANAGE), cached in memory so the
request path authorizes without a store read."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from ladle.control.store import Store
from ladle.schemas.errors import ApiError, endpoint_denied, not_found
from ladle.schemas.principal import LEVELS, RANK, Principal

Entry = tuple[str, str, str]    # (user_name | group_name | service_principal_name, name, level)
LEVEL_DESCRIPTIONS = {
    "CAN_VIEW": "Can view the endpoint, its logs and metrics",
    "CAN_QUERY": "Can view and query the endpoint",
    "CAN_MANAGE": "Can view, query, edit, delete and set permissions on the endpoint",
}


class PermissionService:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.RLock()
        self.reload()

    def reload(self) -> None:
        """Read every ACL again (another server may have changed them)."""
        acl: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
        for eid, ptype, principal, level in self.store.all_acls():
            acl[eid].append((ptype, principal, level))
        self._acl = acl

    def level(self, p: Principal, endpoint_id: str) -> str | None:
        if p.is_admin:
            return "CAN_MANAGE"
        best = -1
        for ptype, name, lvl in self._acl.get(endpoint_id, ()):
            if (
                (ptype == "user_name" and p.kind == "user" and name == p.name)
                or (ptype == "service_principal_name" and p.kind == "service_principal" and name == p.name)
                or (ptype == "group_name" and name in p.groups)
            ):
                best = max(best, RANK[lvl])
        return LEVELS[best] if best >= 0 else None

    def require(self, p: Principal, endpoint_id: str, name: str, wanted: str) -> str:
        lvl = self.level(p, endpoint_id)
        if lvl is None:
            # Do not reveal that an endpoint exists to someone who cannot see it.
            raise not_found(name)
        if RANK[lvl] < RANK[wanted]:
            raise endpoint_denied(p.name, p.kind, wanted, name, lvl)
        return lvl

    # -- for async callers: store calls on the store's threads --------------------------------
    async def authorize_by_id(self, p: Principal, endpoint_id: str, wanted: str) -> str:
        """`endpoint_id` once `p` holds `wanted` on it; RESOURCE_DOES_NOT_EXIST when no endpoint
        has that id."""
        rec = await self.store.call(self.store.get_endpoint_by_id, endpoint_id)
        if rec is None:
            raise ApiError("RESOURCE_DOES_NOT_EXIST", await self._no_such_id(p, endpoint_id))
        self.require(p, rec.id, rec.name, wanted)
        return rec.id

    async def _no_such_id(self, p: Principal, endpoint_id: str) -> str:
        """The not-found message; when `endpoint_id` is the name of an endpoint the caller may
        see, it says that the permissions API takes the endpoint's ID and gives it."""
        msg = f"Serving endpoint with id '{endpoint_id}' does not exist."
        by_name = await self.store.call(self.store.get_endpoint, endpoint_id)
        if by_name is None or self.level(p, by_name.id) is None:
            return msg + (" The permissions API takes the endpoint's ID (the hex `id` that "
                          "`serving-endpoints get <NAME>` shows), not its name.")
        return (msg + f" '{endpoint_id}' is the name of an endpoint; the permissions API takes its ID: "
                f"'{by_name.id}' (the `id` that `serving-endpoints get {endpoint_id}` shows).")

    async def replace(self, endpoint_id: str, entries: list[Entry]) -> None:
        await self.store.call(self.set, endpoint_id, entries)

    async def add(self, endpoint_id: str, entries: list[Entry]) -> None:
        await self.store.call(self.update, endpoint_id, entries)

    def grant_creator(self, endpoint_id: str, p: Principal) -> None:
        ptype = "service_principal_name" if p.kind == "service_principal" else "user_name"
        self._write(endpoint_id, [(ptype, p.name, "CAN_MANAGE")])

    def forget(self, endpoint_id: str) -> None:
        self._acl.pop(endpoint_id, None)

    def set(self, endpoint_id: str, entries: list[Entry]) -> None:
        """Replace the direct grants with `entries` ((principal key, name, level), validated by
        ladle.schemas.permissions.AccessControlRequest)."""
        self._write(endpoint_id, entries)

    def update(self, endpoint_id: str, entries: list[Entry]) -> None:
        with self._lock:
            merged = {(t, n): lvl for t, n, lvl in self._acl.get(endpoint_id, ())}
            for t, n, lvl in entries:
                merged[(t, n)] = lvl
            self._write(endpoint_id, [(t, n, lvl) for (t, n), lvl in merged.items()])

    def _write(self, endpoint_id: str, entries: list[Entry]) -> None:
        with self._lock:   # writes run in worker threads (the API offloads them): one at a time
            self.store.replace_acl(endpoint_id, entries)
            self._acl[endpoint_id] = list(entries)

    def render(self, endpoint_id: str) -> dict[str, Any]:
        acl = [
            {ptype: name, "display_name": name,
             "all_permissions": [{"permission_level": lvl, "inherited": False}]}
            for ptype, name, lvl in sorted(self._acl.get(endpoint_id, ()))
        ]
        acl.append({
            "group_name": "admins", "display_name": "admins",
            "all_permissions": [{"permission_level": "CAN_MANAGE", "inherited": True,
                                 "inherited_from_object": ["/serving-endpoints/"]}],
        })
        return {"object_id": f"/serving-endpoints/{endpoint_id}", "object_type": "serving-endpoint",
                "access_control_list": acl}


def levels_response() -> dict[str, Any]:
    return {"permission_levels": [{"permission_level": lvl, "description": LEVEL_DESCRIPTIONS[lvl]}
                                  for lvl in LEVELS]}
