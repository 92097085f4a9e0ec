"""Secret ACLs, as Databricks has them: per scope, principal -> READ < WRITE < MANAGE.

A principal's permission on a scope is the highest of the entries naming it: its own user or
service principal name, or one of its groups (`users` holds every principal). Admins hold
MANAGE on every scope. What each level allows (control/secrets.py applies it):

- READ: list the scope's keys (`secrets/list`), see the scope in `scopes/list`, and reference
  its secrets (`{{secrets/<scope>/<key>}}`) in an endpoint config one creates or updates;
- WRITE: READ, plus put and delete secrets;
- MANAGE: WRITE, plus read and change the scope's ACLs and delete the scope.

Scopes and ACLs are read from the store once and kept in memory (checks on the endpoint
path do no store read); a write here, or `reload()` (StateSync, when another server sharing
the database wrote), drops the copy and the next check reads it again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ladle.control.store import Store
from ladle.schemas.errors import ApiError
from ladle.schemas.principal import Principal
from ladle.schemas.secrets import PERMISSIONS

RANK = {p: i for i, p in enumerate(PERMISSIONS)}


@dataclass(frozen=True)
class _View:
    scopes: dict[str, str] = field(default_factory=dict)             # scope -> creator
    acls: dict[str, dict[str, str]] = field(default_factory=dict)    # scope -> principal -> permission


def missing(scope: str) -> ApiError:
    return ApiError("RESOURCE_DOES_NOT_EXIST", f"Scope {scope} does not exist!", 404)


class SecretAcls:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._view: _View | None = None
        self._generation = 0
        self._lock = threading.Lock()

    def reload(self) -> None:
        with self._lock:
            self._generation += 1
            self._view = None

    def _current(self) -> _View:
        with self._lock:
            view, generation = self._view, self._generation
        if view is not None:
            return view
        scopes = self.store.secret_scopes()
        acls: dict[str, dict[str, str]] = {s: {} for s in scopes}
        for scope, principal, permission in self.store.secret_acl_rows():
            if scope in acls:
                acls[scope][principal] = permission
        view = _View(scopes, acls)
        with self._lock:
            if self._generation == generation:    # nobody wrote while this was read
                self._view = view
        return view

    def grant_creators(self) -> None:
        """Scopes made before ladle had secret ACLs: each creator gets the MANAGE it had.
        Runs only while no scope has any ACL entry (so a later revocation stays revoked)."""
        view = self._current()
        if view.scopes and not any(view.acls.values()):
            for scope, creator in view.scopes.items():
                self.store.put_secret_acl(scope, creator, "MANAGE")
            self.reload()

    # -- checks --------------------------------------------------------------------------
    def exists(self, scope: str) -> bool:
        return scope in self._current().scopes

    def permission(self, p: Principal, scope: str) -> str | None:
        """The highest permission `p` holds on `scope` (None: none, or no such scope)."""
        view = self._current()
        if scope not in view.scopes:
            return None
        if p.is_admin:
            return "MANAGE"
        best = -1
        for principal, permission in view.acls.get(scope, {}).items():
            if principal == p.name or principal in p.groups:
                best = max(best, RANK[permission])
        return PERMISSIONS[best] if best >= 0 else None

    def require(self, p: Principal, scope: str, wanted: str) -> str:
        """`p`'s permission when it is at least `wanted`. A refusal is decided on a fresh read
        (another server sharing the database may have made the scope or the grant since this
        copy was read); a grant is trusted until the next write or reload."""
        have = self.permission(p, scope)
        if have is None or RANK[have] < RANK[wanted]:
            self.reload()
            have = self.permission(p, scope)
        if not self.exists(scope):
            raise missing(scope)
        if have is None or RANK[have] < RANK[wanted]:
            raise ApiError("PERMISSION_DENIED",
                           f"User {p.name} does not have {wanted} permission on scope {scope}.", 403)
        return have

    def visible(self, p: Principal) -> list[str]:
        """The scopes `p` holds some permission on, sorted."""
        return sorted(s for s in self._current().scopes if self.permission(p, s) is not None)

    # -- the ACLs themselves (callers hold MANAGE) ----------------------------------------
    def entries(self, scope: str) -> dict[str, str]:
        return dict(self._current().acls.get(scope, {}))

    def put(self, scope: str, principal: str, permission: str) -> None:
        try:
            if not self.store.put_secret_acl(scope, principal, permission):
                raise missing(scope)
        finally:
            self.reload()

    def delete(self, scope: str, principal: str) -> bool:
        try:
            return self.store.delete_secret_acl(scope, principal)
        finally:
            self.reload()
