"""Who is calling: resolved from a bearer token by the gateway's authenticate step."""

from __future__ import annotations

from dataclasses import dataclass, field

LEVELS = ("CAN_VIEW", "CAN_QUERY", "CAN_MANAGE")
RANK = {lvl: i for i, lvl in enumerate(LEVELS)}


@dataclass(frozen=True)
class ModelScope:
    """What a Ray Serve replica's fetch token may read: one registered model version (its
    registry entry and download URI) and the files under its artifact path."""

    name: str
    version: str
    artifacts: str = ""   # the version's path on MLflow's artifact proxy ("" : none)


@dataclass(frozen=True)
class Principal:
    name: str
    kind: str = "user"                  # user | service_principal
    is_admin: bool = False
    groups: frozenset[str] = field(default_factory=frozenset)
    token_id: str = ""
    # None = unrestricted; a data-plane token names the endpoints it may reach.
    endpoints: frozenset[str] | None = None
    auth_type: str = "pat"              # pat | oauth-m2m | oauth-u2m | oauth-dataplane | oauth-replica
    # None = unrestricted; a replica's fetch token reads one model version and nothing else
    model_scope: ModelScope | None = None


def at_least(level: str | None, wanted: str) -> bool:
    return level is not None and RANK[level] >= RANK[wanted]
