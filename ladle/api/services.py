"""What the routers need, bundled by the composition root (app.py)."""

from __future__ import annotations

from dataclasses import dataclass

from ladle.config import Settings
from ladle.control.endpoints import EndpointService
from ladle.control.permissions import PermissionService
from ladle.control.tokens import TokenService
from ladle.gateway.pipeline import Gateway
from ladle.runtimes.base import ReplicaBackend
from ladle.telemetry.metrics import MetricsHub
from ladle.telemetry.peers import Peers


@dataclass
class Services:
    settings: Settings
    endpoints: EndpointService
    perms: PermissionService
    tokens: TokenService
    backend: ReplicaBackend
    metrics: MetricsHub
    gateway: Gateway
    mlflow_url: str
    peers: Peers | None = None    # the other servers (several servers on one Redis)
