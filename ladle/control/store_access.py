"""Who may do what: token, endpoint ACL, registry ACL, group and principal rows."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterator

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ladle.control.store_tables import (
    Rows, acl_t, group_members_t, oauth_secrets_t, principals_t, registry_acl_t, secret_acls_t, tokens_t,
)


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


class AccessRows(Rows):
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
            if kind == "service_principal":
                c.execute(delete(oauth_secrets_t).where(oauth_secrets_t.c.principal == name))
            c.execute(delete(group_members_t).where(
                (group_members_t.c.member == name) & (group_members_t.c.member_type == kind)))
            c.execute(delete(acl_t).where((acl_t.c.principal_type == acl_type) & (acl_t.c.principal == name)))
            c.execute(delete(registry_acl_t).where(
                (registry_acl_t.c.principal_type == acl_type) & (registry_acl_t.c.principal == name)))
            # secret ACL principals carry no type: a group of the same name keeps its entries
            if c.execute(select(group_members_t.c.group_name)
                         .where(group_members_t.c.group_name == name).limit(1)).first() is None:
                c.execute(delete(secret_acls_t).where(secret_acls_t.c.principal == name))
