"""Permissions on the MLflow registry's objects: experiments (by id) and registered models (by
name), with the workspace model registry's levels (control/registry_rules.py).

The creator owns what they create (an IS_OWNER row: CAN_MANAGE that a PUT does not remove);
others hold what the owner or an admin grants them. Admins hold CAN_MANAGE on everything.
An object with no rows (made before ladle kept registry permissions, or behind ladle's back
on an external MLflow server) is for admins only, except MLflow's Default experiment (id 0),
which every user may read and write (not delete) so that `mlflow.start_run()` without an
experiment works, as MLflow's own auth layer allows by default; its grants can be changed.

Held in memory (the proxy authorizes without a store read); every change is written to the
store first (on the store's threads, `Store.call`) and reloaded by StateSync on the other servers.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from ladle.control.registry_rules import LEVELS, OWNER, allows, rank
from ladle.control.store import Store
from ladle.schemas.errors import ApiError
from ladle.schemas.principal import Principal

Entry = tuple[str, str, str]      # (principal_type, principal, level)
DEFAULT_EXPERIMENT = "0"
IMPLICIT: dict[tuple[str, str], list[Entry]] = {
    ("experiments", DEFAULT_EXPERIMENT): [("group_name", "users", "CAN_EDIT")],
}
NOUN = {"experiments": "experiment", "registered-models": "registered model"}
DESCRIPTIONS = {
    "CAN_READ": "Can read the object, its runs or versions and their artifacts",
    "CAN_EDIT": "Can read and write (log runs, register versions, set tags and aliases)",
    "CAN_MANAGE_STAGING_VERSIONS": "Can edit and move versions to and from Staging",
    "CAN_MANAGE_PRODUCTION_VERSIONS": "Can edit and move versions to and from Staging and Production",
    "CAN_MANAGE": "Can do everything, delete the object and set its permissions",
}


def _ptype(p: Principal) -> str:
    return "service_principal_name" if p.kind == "service_principal" else "user_name"


def _holds(p: Principal, ptype: str, name: str) -> bool:
    if ptype == "group_name":
        return name in p.groups
    return ptype == _ptype(p) and name == p.name


class RegistryAcl:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._acl: dict[tuple[str, str], list[Entry]] = {}
        self._lock = asyncio.Lock()
        self.reload()

    def reload(self) -> None:
        """Read every grant again (another server may have changed them)."""
        acl: dict[tuple[str, str], list[Entry]] = defaultdict(list)
        for otype, oid, ptype, principal, level in self.store.registry_acl_rows():
            acl[(otype, oid)].append((ptype, principal, level))
        self._acl = dict(acl)

    def entries(self, object_type: str, object_id: str) -> list[Entry]:
        key = (object_type, object_id)
        return self._acl.get(key) or IMPLICIT.get(key, [])

    # -- checks (in memory) -------------------------------------------------------------
    def level(self, p: Principal, object_type: str, object_id: str) -> str | None:
        """The highest level `p` holds on the object (IS_OWNER shows as CAN_MANAGE)."""
        if p.is_admin:
            return "CAN_MANAGE"
        best = -1
        for ptype, name, lvl in self.entries(object_type, object_id):
            if _holds(p, ptype, name):
                best = max(best, rank(object_type, lvl))
        return LEVELS[object_type][best] if best >= 0 else None

    def allowed(self, p: Principal, object_type: str, object_id: str, wanted: str) -> bool:
        return allows(object_type, self.level(p, object_type, object_id), wanted)

    def require(self, p: Principal, object_type: str, object_id: str, wanted: str) -> None:
        if not self.allowed(p, object_type, object_id, wanted):
            raise ApiError("PERMISSION_DENIED",
                           f"Principal '{p.name}' does not have {wanted} permission on "
                           f"{NOUN[object_type]} '{object_id}'.")

    def readable(self, p: Principal, object_type: str) -> set[str] | None:
        """The ids of the objects of that type `p` may read; None: all (an admin)."""
        if p.is_admin:
            return None
        keys = set(self._acl) | set(IMPLICIT)
        return {oid for (otype, oid) in keys
                if otype == object_type and self.allowed(p, otype, oid, "CAN_READ")}

    # -- changes (store first, on the store's threads) ---------------------------------------
    async def _write(self, object_type: str, object_id: str, entries: list[Entry]) -> None:
        await self.store.call(self.store.replace_registry_acl, object_type, object_id, entries)
        if entries:
            self._acl[(object_type, object_id)] = list(entries)
        else:
            self._acl.pop((object_type, object_id), None)

    async def own(self, object_type: str, object_id: str, p: Principal) -> None:
        """`p` created the object: it owns it, and nobody else holds anything on it yet."""
        async with self._lock:
            await self._write(object_type, object_id, [(_ptype(p), p.name, OWNER)])

    async def forget(self, object_type: str, object_id: str) -> None:
        async with self._lock:
            await self._write(object_type, object_id, [])

    async def rename(self, object_type: str, old_id: str, new_id: str) -> None:
        async with self._lock:
            await self.store.call(self.store.rename_registry_acl, object_type, old_id, new_id)
            moved = self._acl.pop((object_type, old_id), None)
            self._acl.pop((object_type, new_id), None)
            if moved:
                self._acl[(object_type, new_id)] = moved

    async def set(self, object_type: str, object_id: str, grants: list[Entry]) -> None:
        """Replace every grant; the owner stays the owner."""
        async with self._lock:
            owners = [e for e in self._acl.get((object_type, object_id), []) if e[2] == OWNER]
            owned = {(t, n) for t, n, _ in owners}
            await self._write(object_type, object_id,
                              owners + [e for e in _dedupe(grants) if (e[0], e[1]) not in owned])

    async def update(self, object_type: str, object_id: str, grants: list[Entry]) -> None:
        """Merge grants into those held (a principal's level is replaced, others kept)."""
        async with self._lock:
            merged = {(t, n): lvl for t, n, lvl in self.entries(object_type, object_id)}
            for t, n, lvl in grants:
                if merged.get((t, n)) != OWNER:
                    merged[(t, n)] = lvl
            await self._write(object_type, object_id, [(t, n, lvl) for (t, n), lvl in merged.items()])

    # -- rendering (Databricks' ObjectPermissions) ----------------------------------------
    def render(self, object_type: str, object_id: str) -> dict[str, Any]:
        acl = [
            {ptype: name, "display_name": name,
             "all_permissions": [{"permission_level": "CAN_MANAGE" if lvl == OWNER else lvl,
                                  "inherited": False}]}
            for ptype, name, lvl in sorted(self.entries(object_type, object_id))
        ]
        acl.append({
            "group_name": "admins", "display_name": "admins",
            "all_permissions": [{"permission_level": "CAN_MANAGE", "inherited": True,
                                 "inherited_from_object": [f"/{object_type}/"]}],
        })
        otype = "registered-model" if object_type == "registered-models" else "mlflowExperiment"
        return {"object_id": f"/{object_type}/{object_id}", "object_type": otype,
                "access_control_list": acl}


def levels_response(object_type: str) -> dict[str, Any]:
    return {"permission_levels": [{"permission_level": lvl, "description": DESCRIPTIONS[lvl]}
                                  for lvl in LEVELS[object_type]]}


def _dedupe(grants: list[Entry]) -> list[Entry]:
    """One grant per principal: the last one given wins."""
    return list({(t, n): (t, n, lvl) for t, n, lvl in grants}.values())
