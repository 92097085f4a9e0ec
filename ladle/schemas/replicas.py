"""The types the control plane, the runtimes and the entities share about replica groups:
what to run (`GroupSpec`), what a build step yields (`Prepared`), what the runtime reports
(`GroupState`, `GroupObs`). They sit here so that each of those packages imports them from
below instead of from one another."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Awaitable, Callable


class GroupState(str, Enum):
    """What the runtime reports for one served entity's replica group."""

    BUILDING = "BUILDING"
    STARTING = "STARTING"
    READY = "READY"
    SCALED_TO_ZERO = "SCALED_TO_ZERO"
    RECOVERING = "RECOVERING"
    FAILED = "FAILED"
    STOPPING = "STOPPING"


@dataclass(frozen=True)
class GroupSpec:
    key: str
    endpoint_id: str
    endpoint_name: str
    entity_name: str
    model_name: str
    model_version: str
    concurrency: int = 4
    env_vars: tuple[tuple[str, str], ...] = ()
    kind: str = "mlflow_pyfunc"


@dataclass(frozen=True)
class GroupObs:
    state: GroupState
    message: str
    ready: int
    target: int
    in_flight: int
    last_used: float
    waiting: int = 0   # requests waiting for a replica of the group (none ready yet)
    queued: int = 0    # requests not yet being served: waiting, or beyond a replica's concurrency


@dataclass
class Prepared:
    python: str
    model_dir: str
    env: dict[str, str] = field(default_factory=dict)


Log = Callable[[str], None]
Preparer = Callable[[GroupSpec, Log], Awaitable[Prepared]]
