"""Users and service principals (SCIM). A principal is a name (a user's userName, a service
principal's applicationId) that tokens, ACLs and groups refer to. It exists when it has a
row in `principals` (made through SCIM) or when a token names it (the implicit ones, as
ladle had them before SCIM: a token made for an unknown name does not add a row). Ids are
derived from kind and name, so an implicit principal keeps its id when it gets a row and
every server agrees on it. Deleting a principal deletes its row, revokes its tokens and
drops it from its groups. Every method here blocks (store calls): run them off the loop."""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any, Callable, Sequence

from ladle.control.groups import GroupService
from ladle.control.tokens import TokenService
from ladle.schemas.errors import ApiError, invalid
from ladle.schemas.groups import BUILTIN

KINDS = ("user", "service_principal")
NOUN = {"user": "User", "service_principal": "Service principal"}


def stable_id(kind: str, name: str) -> str:
    """A numeric id like Databricks' (15 hex digits of SHA-256: no collisions in practice)."""
    return str(int(hashlib.sha256(f"{kind}:{name}".encode()).hexdigest()[:15], 16))


class PrincipalService:
    def __init__(self, tokens: TokenService, groups: GroupService,
                 grants_changed: Sequence[Callable[[], None]] = ()) -> None:
        self.tokens = tokens
        self.groups = groups
        self.store = tokens.store
        # the caches of the grants a deletion removes (endpoint, registry and secret ACLs)
        self.grants_changed = list(grants_changed)

    # -- reads ----------------------------------------------------------------------------
    def all(self, kind: str) -> list[dict[str, Any]]:
        """Every principal of the kind: rows, then names only tokens know, by name."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.store.principal_rows():
            if r["kind"] == kind:
                out[r["name"]] = r
        admins: set[str] = set()
        for t in self.tokens.list():
            if t.principal_type != kind:
                continue
            if t.is_admin:
                admins.add(t.principal)
            out.setdefault(t.principal, {"id": stable_id(kind, t.principal), "kind": kind,
                                         "name": t.principal, "display_name": t.principal,
                                         "active": True, "created_ms": t.created_ms})
        for name, p in out.items():
            p["is_admin"] = name in admins
        return [out[n] for n in sorted(out)]

    def find(self, kind: str, name: str) -> dict[str, Any] | None:
        return next((p for p in self.all(kind) if p["name"] == name), None)

    def get(self, kind: str, pid: str) -> dict[str, Any]:
        p = next((p for p in self.all(kind) if p["id"] == pid), None)
        if p is None:
            raise ApiError("RESOURCE_DOES_NOT_EXIST", f"{NOUN[kind]} with id '{pid}' does not exist.")
        return p

    def by_id(self) -> dict[str, dict[str, Any]]:
        """Every user and service principal by id (one read of the store)."""
        return {p["id"]: p for kind in KINDS for p in self.all(kind)}

    def group_names(self, p: dict[str, Any]) -> list[str]:
        builtin = ["users"] + (["admins"] if p.get("is_admin") else [])
        return builtin + sorted(g for g in self.groups.groups_of(p["name"]))

    # -- changes (admins; the API checks) -------------------------------------------------
    def create(self, kind: str, name: str, display_name: str | None) -> dict[str, Any]:
        if self.find(kind, name) is not None:
            raise ApiError("RESOURCE_ALREADY_EXISTS", f"{NOUN[kind]} '{name}' already exists.", 409)
        row = {"id": stable_id(kind, name), "kind": kind, "name": name,
               "display_name": display_name or name, "active": True,
               "created_ms": int(time.time() * 1000)}
        if not self.store.insert_principal(row):     # made meanwhile (here or on another server)
            raise ApiError("RESOURCE_ALREADY_EXISTS", f"{NOUN[kind]} '{name}' already exists.", 409)
        return {**row, "is_admin": False}

    @staticmethod
    def new_application_id() -> str:
        return str(uuid.uuid4())

    def delete(self, kind: str, pid: str, caller_kind: str, caller_name: str) -> None:
        """Its row, its tokens and its group memberships go, in one transaction."""
        p = self.get(kind, pid)
        if (kind, p["name"]) == (caller_kind, caller_name):
            raise invalid("id: you cannot delete yourself (it would revoke the token you call with)")
        self.store.delete_principal(kind, p["name"])
        self.tokens.forget_principal(kind, p["name"])
        self.groups.reload()
        for reload in self.grants_changed:
            reload()

    # -- groups -----------------------------------------------------------------------------
    def group_id(self, name: str) -> str:
        return stable_id("group", name)

    def group_names_all(self) -> list[str]:
        return sorted(BUILTIN) + [g["display_name"] for g in self.groups.list()]

    def group_by_id(self, gid: str) -> str:
        name = next((n for n in self.group_names_all() if self.group_id(n) == gid), None)
        if name is None:
            raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Group with id '{gid}' does not exist.")
        return name

    def group_members(self, name: str) -> list[dict[str, Any]]:
        """[{kind, name, id}] of a group; `users` is every principal, `admins` every admin."""
        if name in BUILTIN:
            everyone = self.all("user") + self.all("service_principal")
            return [p for p in everyone if name == "users" or p["is_admin"]]
        g = next(g for g in self.groups.list() if g["display_name"] == name)
        return [{"kind": m["type"], "name": m["name"], "id": stable_id(m["type"], m["name"])}
                for m in g["members"]]

    def members_by_id(self, ids: list[str]) -> list[dict[str, Any]]:
        """The users and service principals with these ids; any other id is an error."""
        known = self.by_id()
        for pid in ids:
            if pid not in known:
                if any(self.group_id(n) == pid for n in self.group_names_all()):
                    raise invalid(f"members: '{pid}' is a group; groups cannot be members of groups here")
                raise ApiError("RESOURCE_DOES_NOT_EXIST", f"No user or service principal with id '{pid}'.")
        return [known[pid] for pid in ids]

    def editable_group(self, gid: str) -> str:
        name = self.group_by_id(gid)
        if name in BUILTIN:
            raise invalid(f"id: '{name}' is a built-in group and cannot be changed")
        return name

    def add_members(self, gid: str, ids: list[str]) -> None:
        name = self.editable_group(gid)
        members = self.members_by_id(ids)     # all checked before any change
        for m in members:
            self.groups.add_member(name, m["name"], m["kind"])

    def remove_members(self, gid: str, ids: list[str]) -> None:
        name = self.editable_group(gid)
        current = {m["id"]: m for m in self.group_members(name)}
        for i in ids:
            if i not in current:
                raise ApiError("RESOURCE_DOES_NOT_EXIST", f"'{i}' is not a member of group '{name}'.")
        for i in ids:
            self.groups.remove_member(name, current[i]["name"])

    def create_group(self, name: str, member_ids: list[str]) -> str:
        members = self.members_by_id(member_ids)
        self.groups.create(name)
        for m in members:
            self.groups.add_member(name, m["name"], m["kind"])
        return name

    def delete_group(self, gid: str) -> None:
        self.groups.delete(self.editable_group(gid))
