"""Groups that ladle manages: named sets of principals (users and service principals, by
name). A principal's groups feed endpoint ACLs (`group_name`) and AI Gateway rate limits
(`key: user_group`). Held in memory; every change is written to the store first.

`users` (every principal) and `admins` (admin tokens) are built in and cannot be edited."""

from __future__ import annotations

import threading
from typing import Any

from ladle.control.store import Store
from ladle.schemas.errors import ApiError, invalid
from ladle.schemas.groups import BUILTIN, NAME_RE

MEMBER_TYPES = ("user", "service_principal")


class GroupService:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._members: dict[str, dict[str, str]] = {}     # group -> {member: member_type}
        self._of: dict[str, frozenset[str]] = {}          # member -> groups
        # Changes run in worker threads (the API offloads store writes): one at a time.
        self._lock = threading.Lock()
        self.reload()

    def reload(self) -> None:
        """Read every group again (another server may have changed them)."""
        members: dict[str, dict[str, str]] = {}
        for group, member, mtype in self.store.group_rows():
            members.setdefault(group, {})
            if member:
                members[group][member] = mtype
        self._members = members
        self._index()

    def _index(self) -> None:
        of: dict[str, set[str]] = {}
        for g, members in self._members.items():
            for m in members:
                of.setdefault(m, set()).add(g)
        self._of = {m: frozenset(gs) for m, gs in of.items()}

    # -- request path -------------------------------------------------------------------
    def groups_of(self, principal: str) -> frozenset[str]:
        return self._of.get(principal, frozenset())

    # -- management ---------------------------------------------------------------------
    def _check_name(self, name: Any) -> str:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise invalid("display_name: a group name of 1-128 letters, digits, spaces or ._@+- "
                          "(starting with a letter or digit) is required")
        if name in BUILTIN:
            raise invalid(f"display_name: '{name}' is a built-in group and cannot be changed")
        return name

    def _existing(self, name: str) -> dict[str, str]:
        if name not in self._members:
            raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Group '{name}' does not exist.")
        return self._members[name]

    def create(self, name: Any) -> dict[str, Any]:
        name = self._check_name(name)
        with self._lock:
            if name in self._members:
                raise ApiError("RESOURCE_ALREADY_EXISTS", f"Group '{name}' already exists.", 409)
            self.store.add_group_row(name, "", "")
            self._members[name] = {}
            return self.render(name)

    def delete(self, name: str) -> None:
        with self._lock:
            self._existing(name)
            self.store.delete_group_rows(name)
            del self._members[name]
            self._index()

    def add_member(self, name: str, member: Any, member_type: str) -> dict[str, Any]:
        if not isinstance(member, str) or not member or len(member) > 256:
            raise invalid("member: a principal name of 1-256 characters is required")
        if member_type not in MEMBER_TYPES:
            raise invalid(f"member_type: must be one of {', '.join(MEMBER_TYPES)}")
        with self._lock:
            members = self._existing(name)
            self.store.add_group_row(name, member, member_type)
            members[member] = member_type
            self._index()
            return self.render(name)

    def remove_member(self, name: str, member: str) -> dict[str, Any]:
        with self._lock:
            members = self._existing(name)
            if member not in members:
                raise ApiError("RESOURCE_DOES_NOT_EXIST", f"'{member}' is not a member of group '{name}'.")
            self.store.delete_group_rows(name, member)
            del members[member]
            self._index()
            return self.render(name)

    def render(self, name: str) -> dict[str, Any]:
        members = self._members[name]
        return {"display_name": name,
                "members": [{"name": m, "type": t} for m, t in sorted(members.items())]}

    def list(self) -> list[dict[str, Any]]:
        return [self.render(g) for g in sorted(self._members)]
