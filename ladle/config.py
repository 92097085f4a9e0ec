"""Typed settings (LADLE_ prefix). Loaded once in the composition root and passed down."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LADLE_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path(os.path.expanduser("~/.ladle")))
    host: str = "127.0.0.1"
    port: int = 8080
    admin_token: str | None = None
    # Point at an existing MLflow tracking server instead of the embedded one.
    mlflow_tracking_uri: str | None = None
    mlflow_tracking_token: str | None = None
    # Made once, reused by every home: a migrated empty MLflow database per MLflow version
    cache_dir: Path = Field(default_factory=lambda: Path(os.path.expanduser("~/.cache/ladle")))
    # The embedded registry's process stops after this many seconds without a request (it frees
    # ~200 MB) and starts again on the next one, which waits for it (~3 s); 0: never stops
    registry_idle_s: float = Field(120.0, ge=0)
    # Data plane.
    request_timeout_s: float = 120.0
    metrics_history_interval_s: float = 15.0
    max_payload_bytes: int = 16 * 1024 * 1024
    # Scale-to-zero: idle seconds before a scale-to-zero entity stops its replicas.
    scale_to_zero_idle_s: float = 300.0
    # Replicas.
    replica_start_timeout_s: float = 300.0
    replica_concurrency: int = 4
    warm_spares: int = 1  # pre-warmed replica processes kept ready per interpreter
    # Start the replica template (runtimes/template.py) with the server rather than with the
    # first MLflow model endpoint (`ladle server --demo` sets it: its model comes at once)
    replica_template_eager: bool = False
    # Start the embedded registry with the server rather than at its first use (a connection
    # made at once starts it; `ladle server --demo` sets it: its model is registered at once)
    registry_eager: bool = False
    max_replicas_per_entity: int = 0  # 0: the machine's CPU count (the autoscaler's per-server cap)
    # Autoscaling (control/autoscale.py): each served entity runs between its range's minimum
    # and maximum replicas, aiming at this many in-flight requests per replica; up on the mean
    # load over the up window, down only after the load stayed low for the down window and
    # the cool-down since the last change passed. Off: every entity runs its range's maximum.
    autoscale_enabled: bool = True
    autoscale_target_in_flight: float = Field(3.0, gt=0)
    autoscale_up_window_s: float = Field(2.0, ge=0)
    autoscale_down_window_s: float = Field(15.0, ge=0)
    autoscale_cooldown_s: float = Field(15.0, ge=0)
    reconcile_interval_s: float = 1.0
    # How replica workers are contained (ladle/runtimes/sandbox.py): auto (as root: a
    # dedicated user in a private mount namespace; else a user namespace when allowed; else
    # a scrubbed environment only) | user | userns | none
    worker_isolation: str = "auto"
    worker_user: str = "ladle-worker"  # the unprivileged user workers run as (created when missing)
    runtime: str = "local"  # where replicas run: local (worker processes) | ray (Ray Serve)
    # Ray Serve (runtime "ray"): a cluster's address ("auto", "ray://host:10001"); unset
    # starts a local one
    ray_address: str | None = None
    # Replicas prepare their model on their own Ray node (download from the registry with a
    # short-lived token that reads that one version; environment built and cached on the
    # node), instead of using the paths this server prepared (which needs a shared filesystem)
    ray_prepare_on_node: bool = False
    # The URL Ray nodes reach this server's registry (its MLflow proxy) at; unset: this
    # server's own address (right when the nodes share its machine or network name)
    ray_registry_url: str | None = None
    # Custom Ray resources each Serve replica needs (JSON, e.g. {"gpu_node": 0.01}): pins
    # replicas to the nodes that offer them (`ray start --resources=...`)
    ray_replica_resources: dict[str, float] = Field(default_factory=dict)
    # Shared state for several ladle servers: a SQLAlchemy URL of a PostgreSQL database
    # (postgresql+psycopg://user:pass@host/db); unset: SQLite in LADLE_HOME
    database_url: str | None = None
    # Redis for rate limits counted across every server (redis://host:6379/0)
    redis_url: str | None = None
    # The Fernet key that seals secrets: every server sharing a database needs the same one;
    # unset: LADLE_HOME/secrets.key, made at first use
    secret_key: str | None = None
    # How often a server looks for other servers' changes to the shared database
    sync_interval_s: float = 1.0
    # How often a server shares its request metrics through Redis and reads the others'
    metrics_share_interval_s: float = 1.0
    # The URL other servers reach this one at (for replica logs); unset: http://host:port,
    # with the machine's host name when bound to every interface
    advertise_url: str | None = None
    # Processes that serve requests (the request path on every core; see gateway/workers.py):
    # 0 = one per core; 1 = the server process alone. Local replicas only (Ray: always 1).
    gateway_workers: int = 0
    # How those processes count rate limits without Redis: "shared" (one table in shared
    # memory, gateway/ratelimit_shm.py) or "server" (each request asks the server's counters)
    gateway_limits: Literal["shared", "server"] = "shared"
    # Bounds on every wait on the database (seconds): opening a PostgreSQL connection, one
    # statement (PostgreSQL statement_timeout, SQLite busy timeout), a free pooled connection
    db_connect_timeout_s: float = 5.0
    db_statement_timeout_s: float = 5.0
    db_pool_timeout_s: float = 5.0
    # AI Gateway tables (usage tracking, inference tables): asynchronous batched writes.
    table_flush_rows: int = 500
    table_flush_interval_s: float = 2.0
    table_queue_rows: int = 20_000
    # Where the tables live; several servers that share it write one table each (usage,
    # payload), e.g. a shared filesystem mount. Unset: LADLE_HOME/tables
    tables_root: Path | None = None
    workspace_id: str = "1000000000000001"
    # Pay-per-token endpoints for every foundation model whose weights are on the machine
    # (only with the built-in local runtime).
    foundation_endpoints: bool = True

    @property
    def db_path(self) -> Path:
        return self.home / "ladle.db"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.db_path}"

    @property
    def mlflow_dir(self) -> Path:
        return self.home / "mlflow"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def envs_dir(self) -> Path:
        return self.home / "envs"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def tables_dir(self) -> Path:
        return self.tables_root or self.home / "tables"

    @property
    def public_url(self) -> str:
        if self.advertise_url:
            return self.advertise_url.rstrip("/")
        host = socket.gethostname() if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"

    @property
    def spool_dir(self) -> Path:
        """This server's journal of table rows not yet in their tables (never shared)."""
        return self.home / "spool"

    @property
    def gateway_processes(self) -> int:
        """How many processes serve requests (the server and its gateway workers)."""
        if self.runtime != "local":
            return 1
        return self.gateway_workers if self.gateway_workers > 0 else (os.cpu_count() or 1)

    def ensure_dirs(self) -> None:
        for d in (self.home, self.mlflow_dir, self.models_dir, self.envs_dir, self.logs_dir, self.run_dir):
            d.mkdir(parents=True, exist_ok=True)
