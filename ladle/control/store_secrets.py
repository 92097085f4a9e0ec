"""Secret rows (values arrive sealed; control/secrets.py seals and unseals), their scopes and
the scopes' ACLs."""

from __future__ import annotations

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from ladle.control.store_tables import Rows, secret_acls_t, secret_scopes_t, secrets_t


class SecretRows(Rows):
    # -- secrets (values arrive sealed; control/secrets.py seals and unseals) -------------
    def secret_scopes(self) -> dict[str, str]:
        with self.engine.connect() as c:
            return {r.name: r.creator for r in c.execute(select(secret_scopes_t)).all()}

    def insert_scope(self, name: str, creator: str, manager: str | None = None) -> bool:
        """The scope and, when `manager` is given, its first ACL entry (manager: MANAGE)."""
        try:
            with self._write() as c:
                c.execute(insert(secret_scopes_t).values(name=name, creator=creator))
                if manager is not None:
                    c.execute(insert(secret_acls_t).values(scope=name, principal=manager, permission="MANAGE"))
            return True
        except IntegrityError:
            return False

    def delete_scope(self, name: str) -> None:
        with self._write() as c:
            c.execute(delete(secrets_t).where(secrets_t.c.scope == name))
            c.execute(delete(secret_acls_t).where(secret_acls_t.c.scope == name))
            c.execute(delete(secret_scopes_t).where(secret_scopes_t.c.name == name))

    def secret_acl_rows(self) -> list[tuple[str, str, str]]:
        """(scope, principal, permission) for every scope."""
        with self.engine.connect() as c:
            rows = c.execute(select(secret_acls_t)).all()
        return [(r.scope, r.principal, r.permission) for r in rows]

    def put_secret_acl(self, scope: str, principal: str, permission: str) -> bool:
        """Create or overwrite; False (nothing written) when the scope does not exist."""
        for attempt in (1, 2):     # 2: another server inserted the same entry at the same time
            try:
                with self._write() as c:
                    if c.execute(select(secret_scopes_t.c.name)
                                 .where(secret_scopes_t.c.name == scope)).first() is None:
                        return False
                    c.execute(delete(secret_acls_t).where(
                        (secret_acls_t.c.scope == scope) & (secret_acls_t.c.principal == principal)))
                    c.execute(insert(secret_acls_t).values(scope=scope, principal=principal,
                                                           permission=permission))
                return True
            except IntegrityError:
                if attempt == 2:
                    raise
        return True

    def delete_secret_acl(self, scope: str, principal: str) -> bool:
        with self._write() as c:
            return c.execute(delete(secret_acls_t).where(
                (secret_acls_t.c.scope == scope) & (secret_acls_t.c.principal == principal))).rowcount > 0

    def put_secret(self, scope: str, key: str, sealed: str, now_ms: int) -> None:
        with self._write() as c:
            c.execute(delete(secrets_t).where((secrets_t.c.scope == scope) & (secrets_t.c.key == key)))
            c.execute(insert(secrets_t).values(scope=scope, key=key, value=sealed, updated_ms=now_ms))

    def secrets_of(self, scope: str) -> dict[str, tuple[str, int]]:
        with self.engine.connect() as c:
            rows = c.execute(select(secrets_t).where(secrets_t.c.scope == scope)).all()
        return {r.key: (r.value, r.updated_ms) for r in rows}

    def all_secrets(self) -> dict[tuple[str, str], str]:
        """(scope, key) -> sealed value, for every secret."""
        with self.engine.connect() as c:
            return {(r.scope, r.key): r.value
                    for r in c.execute(select(secrets_t.c.scope, secrets_t.c.key, secrets_t.c.value))}

    def delete_secret(self, scope: str, key: str) -> bool:
        with self._write() as c:
            return c.execute(delete(secrets_t).where(
                (secrets_t.c.scope == scope) & (secrets_t.c.key == key))).rowcount > 0
