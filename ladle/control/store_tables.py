"""The store's tables (SQLAlchemy Core), and the base of the per-resource row classes the
Store is made of (control/store.py)."""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger, Boolean, Column, Integer, MetaData, String, Table, Text, UniqueConstraint,
)
from sqlalchemy.engine import Connection, Engine

metadata = MetaData()

endpoints_t = Table(
    "endpoints", metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(64), unique=True, nullable=False),
    Column("creator", String(256), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("meta", Text, nullable=False),          # description, tags, ai_gateway, ... (JSON)
    Column("active", Text, nullable=True),         # the serving config (JSON) or NULL
    Column("pending", Text, nullable=True),        # the config being rolled out (JSON) or NULL
    Column("config_update", String(32), nullable=False),
    Column("next_version", Integer, nullable=False),
    Column("revision", Integer, nullable=False, default=0),
)

tokens_t = Table(
    "tokens", metadata,
    Column("id", String(32), primary_key=True),
    Column("hash", String(64), unique=True, nullable=False),
    Column("principal_type", String(32), nullable=False),   # user | service_principal
    Column("principal", String(256), nullable=False),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("comment", Text, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("expiry_ms", BigInteger, nullable=False),        # -1: never
    Column("created_by", String(256), nullable=False),
)

acl_t = Table(
    "acl", metadata,
    Column("endpoint_id", String(32), primary_key=True),
    Column("principal_type", String(32), primary_key=True),  # user_name | group_name | service_principal_name
    Column("principal", String(256), primary_key=True),
    Column("level", String(16), nullable=False),
)

registry_acl_t = Table(   # grants on MLflow experiments and registered models (control/registry_acl.py)
    "registry_acl", metadata,
    Column("object_type", String(32), primary_key=True),     # experiments | registered-models
    Column("object_id", Text, primary_key=True),             # experiment id | model name (any length)
    Column("principal_type", String(32), primary_key=True),  # user_name | group_name | service_principal_name
    Column("principal", String(256), primary_key=True),
    Column("level", String(40), nullable=False),             # IS_OWNER marks the creator
)

group_members_t = Table(
    "group_members", metadata,
    Column("group_name", String(256), primary_key=True),
    Column("member", String(256), primary_key=True),         # "" marks an empty group
    Column("member_type", String(32), nullable=False),       # user | service_principal | "" (marker)
)

principals_t = Table(   # users and service principals made through SCIM (control/principals.py)
    "principals", metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(32), nullable=False),              # user | service_principal
    Column("name", String(256), nullable=False),             # userName | applicationId
    Column("display_name", String(256), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_ms", BigInteger, nullable=False),
    UniqueConstraint("kind", "name"),
)

secret_scopes_t = Table(
    "secret_scopes", metadata,
    Column("name", String(128), primary_key=True),
    Column("creator", String(256), nullable=False),
)

secret_acls_t = Table(   # who may use a secret scope: READ < WRITE < MANAGE (control/secret_acls.py)
    "secret_acls", metadata,
    Column("scope", String(128), primary_key=True),
    Column("principal", String(256), primary_key=True),      # a user, service principal or group name
    Column("permission", String(16), nullable=False),
)

secrets_t = Table(
    "secrets", metadata,
    Column("scope", String(128), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", Text, nullable=False),                   # sealed (Fernet), never plaintext
    Column("updated_ms", BigInteger, nullable=False),
)

oauth_keys_t = Table(   # JWT signing keys (control/oauth_keys.py); the private key sealed
    "oauth_keys", metadata,
    Column("kid", String(64), primary_key=True),
    Column("alg", String(16), nullable=False),
    Column("public_pem", Text, nullable=False),
    Column("private_sealed", Text, nullable=False),          # sealed (Fernet), never plaintext
    Column("created_ms", BigInteger, nullable=False),
)

oauth_secrets_t = Table(   # service principals' OAuth client secrets (control/oauth_secrets.py)
    "oauth_secrets", metadata,
    Column("id", String(32), primary_key=True),
    Column("hash", String(64), unique=True, nullable=False),  # SHA-256 of the secret
    Column("principal", String(256), nullable=False),        # the service principal's applicationId
    Column("scopes", Text, nullable=True),                   # JSON list, or NULL (all-apis)
    Column("created_ms", BigInteger, nullable=False),
    Column("expiry_ms", BigInteger, nullable=False),
)

oauth_grants_t = Table(   # authorization codes and refresh tokens (control/oauth_grants.py)
    "oauth_grants", metadata,
    Column("hash", String(64), primary_key=True),            # SHA-256 of the code or token
    Column("kind", String(16), nullable=False),              # code | refresh
    Column("data", Text, nullable=False),                    # JSON: who, client, scope, PKCE, ...
    Column("expiry_ms", BigInteger, nullable=False),
)

apps_t = Table(   # apps (control/apps.py): the principal's secret sealed, grants and ACL as JSON
    "apps", metadata,
    Column("name", String(64), primary_key=True),
    Column("id", String(64), nullable=False),
    Column("data", Text, nullable=False),     # description, resources, creator, sealed secret, ...
    Column("created_ms", BigInteger, nullable=False),
)

app_deployments_t = Table(   # one row per deployment of an app (control/apps_deploy.py)
    "app_deployments", metadata,
    Column("id", String(64), primary_key=True),
    Column("app", String(64), nullable=False, index=True),
    Column("data", Text, nullable=False),     # source_code_path, mode, state, message, creator, ...
    Column("created_ms", BigInteger, nullable=False),
)

state_t = Table(          # one row: bumped by every write, read by every server each second
    "state_version", metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
)

leases_t = Table(
    "leases", metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
)


class Rows:
    """What the per-resource row classes (store_endpoints, store_access, store_secrets) use of
    the Store: its engine and its write transaction, which bumps the state version."""

    engine: Engine

    def _write(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError


def dump_json(v: Any) -> str | None:
    return None if v is None else orjson.dumps(v).decode()


def load_json(v: str | None) -> Any:
    return None if v is None else orjson.loads(v)
