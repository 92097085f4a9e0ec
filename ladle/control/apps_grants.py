"""What an app's resources grant its service principal: a `serving_endpoint` resource grants
its permission on the endpoint, a `secret` resource its permission on the secret's scope.
`check` refuses (naming the field) a resource the caller cannot grant, before anything
changes; `apply` moves the grants from one resource list to the next (a resource removed is a
grant revoked). Every method blocks (store calls): run them off the event loop."""

from __future__ import annotations

from typing import Any, Sequence

from ladle.control.permissions import PermissionService
from ladle.control.secrets import SecretStore
from ladle.control.store import Store
from ladle.schemas.errors import ApiError, invalid
from ladle.schemas.principal import RANK, Principal

SP = "service_principal_name"
SECRET_RANK = {"READ": 0, "WRITE": 1, "MANAGE": 2}


def _wanted(resources: list[dict[str, Any]], kind: str, key: Any, rank: dict[str, int]) -> dict[Any, str]:
    """The strongest permission each object gets from `resources` of `kind`."""
    out: dict[Any, str] = {}
    for r in resources:
        spec = r.get(kind)
        if not spec:
            continue
        k = key(spec)
        if k not in out or rank[spec["permission"]] > rank[out[k]]:
            out[k] = spec["permission"]
    return out


def _changed(old: list[dict[str, Any]], new: list[dict[str, Any]], kind: str, key: Any,
             rank: dict[str, int]) -> list[tuple[Any, str | None]]:
    """The objects of `kind` whose strongest permission differs between `old` and `new`
    resources, each with its new permission (None: no longer granted)."""
    before, after = _wanted(old, kind, key, rank), _wanted(new, kind, key, rank)
    return [(k, after.get(k)) for k in set(before) | set(after) if before.get(k) != after.get(k)]


class AppGrants:
    def __init__(self, store: Store, perms: PermissionService, secrets: SecretStore) -> None:
        self.store = store
        self.perms = perms
        self.secrets = secrets

    def check(self, caller: Principal, resources: list[dict[str, Any]],
              granted: Sequence[dict[str, Any]] = ()) -> None:
        """Every endpoint exists and the caller manages it; every secret scope exists and the
        caller manages it (granting is managing). Resources in `granted` (the app has them
        already, unchanged) are not checked again: who edits the app's description need not
        manage its endpoints."""
        for i, r in enumerate(resources):
            if r in granted:
                continue
            if r.get("serving_endpoint"):
                name = r["serving_endpoint"]["name"]
                field = f"resources[{i}].serving_endpoint.name"
                rec = self.store.get_endpoint(name)
                level = None if rec is None else self.perms.level(caller, rec.id)
                if level is None:
                    raise invalid(f"{field}: serving endpoint '{name}' does not exist")
                if level != "CAN_MANAGE":
                    raise ApiError("PERMISSION_DENIED", f"{field}: granting access to serving endpoint "
                                   f"'{name}' needs CAN_MANAGE on it (you have {level}).", 403)
            elif r.get("secret"):
                scope = r["secret"]["scope"]
                field = f"resources[{i}].secret.scope"
                have = self.secrets.acls.permission(caller, scope)
                if not self.secrets.acls.exists(scope) or (have is None and not caller.is_admin):
                    raise invalid(f"{field}: secret scope '{scope}' does not exist")
                if have != "MANAGE":
                    raise ApiError("PERMISSION_DENIED", f"{field}: granting access to secret scope "
                                   f"'{scope}' needs MANAGE on it (you have {have}).", 403)
                if (scope, r["secret"]["key"]) not in self.store.all_secrets():
                    raise invalid(f"resources[{i}].secret.key: no secret '{r['secret']['key']}' "
                                  f"in scope '{scope}'")

    def apply(self, client_id: str, old: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
        """Grant what `new` declares and revoke what only `old` declared."""
        for name, level in _changed(old, new, "serving_endpoint", lambda s: s["name"], RANK):
            rec = self.store.get_endpoint(name)
            if rec is None:        # deleted meanwhile: its grants went with it
                continue
            entries = [e for e in self.store.acl(rec.id) if (e[0], e[1]) != (SP, client_id)]
            if level is not None:
                entries.append((SP, client_id, level))
            self.perms.set(rec.id, entries)
        for scope, level in _changed(old, new, "secret", lambda s: s["scope"], SECRET_RANK):
            if level is not None:
                try:
                    self.secrets.acls.put(scope, client_id, level)
                except ApiError:   # the scope was deleted meanwhile
                    pass
            else:
                self.secrets.acls.delete(scope, client_id)
