"""The composition root: the only place that builds and wires objects."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
from typing import AsyncIterator

from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Route

from ladle.api import dataplane, endpoints, mlflow_proxy, openai_routes, permissions, tokens
from ladle.api import responses_routes, server_relay
from ladle.entities.signature import model_task
from ladle.api import foundation as foundation_api
from ladle.api import secrets as secrets_api
from ladle.api import groups as groups_api
from ladle.api import scim as scim_api
from ladle.api import metrics_history as metrics_history_api
from ladle.api import registry_permissions as registry_permissions_api
from ladle.api import unity_catalog as unity_catalog_api
from ladle.api.mlflow_authz import Lookups
from ladle.api import oauth_secrets as oauth_secrets_api
from ladle.api import oidc
from ladle.api import apps as apps_api
from ladle.api import app_logs, app_proxy, app_ws
from ladle.api.app_gate import AppGate
from ladle.api import workspace as workspace_api
from ladle.api import openapi_own
from ladle.api import usage as usage_api
from ladle.api.errors import api_error, client_gone, database_away, http_error, internal_error
from ladle.api.services import Services
from ladle.config import Settings
from ladle.control.apps import AppService, Runner
from ladle.control.apps_deploy import AppDeployer
from ladle.control.apps_grants import AppGrants
from ladle.control.endpoints import EndpointService
from ladle.control.groups import GroupService
from ladle.control.oauth_auth import Authenticator
from ladle.control.oauth_exchange import GRANT_TYPE as JWT_BEARER
from ladle.control.oauth_exchange import JwtBearerGrant
from ladle.control.oauth_grants import OAuthGrants
from ladle.control.oauth_keys import SigningKeys
from ladle.control.oauth_secrets import OAuthSecrets
from ladle.control.principals import PrincipalService
from ladle.control.permissions import PermissionService
from ladle.control.autoscale import Knobs
from ladle.control.reconciler import Reconciler
from ladle.control.registry_acl import RegistryAcl
from ladle.control.store import DatabaseBusy, DbTimeouts, Store
from ladle.control.secrets import SecretStore
from ladle.control.sync import StateSync
from ladle.control.tokens import TokenService
from ladle.control.workspace_files import WorkspaceFiles
from ladle.entities.catalog import Catalog
from ladle.entities.prepare import PyfuncPreparer
from ladle.entities.prepare_kinds import FoundationPreparer, KindPreparer
from ladle.entities.registry import Registry
from ladle.gateway.auth import AuthMiddleware
from ladle.gateway.external import ExternalCaller
from ladle.gateway.pipeline import Gateway
from ladle.gateway.pool import ReplicaPool
from ladle.runtimes.base import ReplicaBackend
from ladle.runtimes.mlflow_tracking import TrackingServer
from ladle.runtimes.socket_dir import remove_socket_dir, socket_dir
from ladle.runtimes.template import Prestarted
from ladle.schemas.errors import ApiError
from ladle.schemas.principal import Principal
from ladle.telemetry.history import MetricsHistory
from ladle.telemetry.metrics import MetricsHub
from ladle.telemetry.otel import Otel
from ladle.telemetry.recorder import Recorder
from ladle.telemetry.spool import Spool
from ladle.telemetry.spooled import SpooledWriter
from ladle.telemetry.tables import DeltaSink

log = logging.getLogger("ladle")


def listen_sockets(settings: Settings) -> list[socket.socket] | None:
    """The sockets a server with gateway workers serves on (its TCP socket, which the workers
    inherit, and its private Unix socket, which they relay the control plane to); None: one
    process serves, uvicorn binds as usual."""
    if settings.gateway_processes <= 1:
        return None
    from ladle.gateway.workers import bind_sockets

    settings.ensure_dirs()
    return bind_sockets(settings.host, settings.port, socket_dir(settings.run_dir) / "server.sock")


def _connect_once(port: int) -> None:
    with contextlib.suppress(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2.0).close()


def build_app(settings: Settings, backend: ReplicaBackend | None = None,
              registry: Registry | None = None, app_runner: Runner | None = None,
              listen: list[socket.socket] | None = None, log_level: str = "warning",
              template: Prestarted | None = None) -> Starlette:
    """`template`: a replica template process started before this (ladle server --demo)."""
    settings.ensure_dirs()
    store = Store(settings.db_url, DbTimeouts(settings.db_connect_timeout_s, settings.db_statement_timeout_s,
                                              settings.db_pool_timeout_s))
    groups = GroupService(store)
    tokens_svc = TokenService(store, groups.groups_of)
    token_file = tokens_svc.bootstrap_admin(settings.home, settings.admin_token)
    if token_file:
        print(f"ladle: admin token is in {token_file}", flush=True)
    perms = PermissionService(store)
    registry_acl = RegistryAcl(store)

    tracking: TrackingServer | None = None
    if registry is not None:
        mlflow_url, mlflow_token = registry.tracking_uri, registry.token
    elif settings.mlflow_tracking_uri:
        mlflow_url, mlflow_token = settings.mlflow_tracking_uri, settings.mlflow_tracking_token
    else:
        tracking = TrackingServer(settings.mlflow_dir, settings.logs_dir / "mlflow-server.log",
                                  cache_dir=settings.cache_dir, idle_s=settings.registry_idle_s)
        mlflow_url, mlflow_token = tracking.url, tracking.token
    registry = registry or Registry(mlflow_url, mlflow_token, cached=tracking is not None)
    registry_lookups = Lookups(mlflow_url, mlflow_token)

    catalog = Catalog(settings.home)
    secrets = SecretStore(store, settings.home, settings.secret_key)
    # OAuth: JWT signing keys sealed like secrets; `authenticator` takes PATs and JWTs
    signing_keys = SigningKeys(store, secrets.seal, secrets.unseal)
    signing_keys.ensure()
    authenticator = Authenticator(tokens_svc, signing_keys, store, groups.groups_of)
    tokens_svc.on_revoke.append(authenticator.reload)
    principals = PrincipalService(tokens_svc, groups, grants_changed=[
        perms.reload, registry_acl.reload, secrets.reload, authenticator.reload])
    oauth_secrets = OAuthSecrets(store, principals, on_revoke=authenticator.reload)
    oauth_grants = OAuthGrants(store, signing_keys, oauth_secrets)
    token_grants = oauth_grants.grants()     # grant_type -> handler of /oidc/v1/token
    token_grants[JWT_BEARER] = JwtBearerGrant(    # a data-plane token for route-optimized endpoints
        store, signing_keys, authenticator.authenticate, authenticator.verify, tokens_svc.expiry_s, perms.level)
    # Apps: workspace files, each app's principal and grants, deployments run by the app runner
    workspace_files = WorkspaceFiles(settings.home / "workspace")

    def make_app_runner() -> Runner:
        if app_runner is not None:
            return app_runner
        from ladle.runtimes.app_runner import AppRunner
        from ladle.runtimes.sandbox import make_sandbox, set_non_dumpable

        app_sandbox = make_sandbox(settings.worker_isolation, settings.worker_user, settings.home,
                                   also_hide=[socket_dir(settings.run_dir)])
        if app_sandbox.mode != "user":   # apps share this uid: close our /proc/<pid>/environ
            set_non_dumpable()
        return AppRunner(app_sandbox, settings.home / "apps", settings.envs_dir / "apps", settings.run_dir)

    apps = AppService(store, principals, oauth_secrets, AppGrants(store, perms, secrets), make_app_runner,
                      settings.home / "apps", secrets.seal, secrets.unseal)
    loopback = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    app_deployer = AppDeployer(apps, workspace_files, secrets.get_value,
                               f"http://{'[' + loopback + ']' if ':' in loopback else loopback}:{settings.port}",
                               settings.workspace_id)
    local_runtime = backend is None and settings.runtime == "local"
    if backend is None:
        preparer = KindPreparer({"mlflow_pyfunc": PyfuncPreparer(
                                     registry, settings.models_dir, settings.envs_dir,
                                     settings.mlflow_dir / "artifacts" if tracking is not None else None),
                                 "foundation": FoundationPreparer(catalog)}, secrets.resolve_env)
        if settings.runtime == "ray":
            from ladle.runtimes.ray import RayBackend

            from ladle.control.replica_tokens import ReplicaTokens
            from ladle.runtimes.ray_deployment import RegistryPreparer

            on_node = settings.ray_prepare_on_node
            own_url = f"http://{'[' + loopback + ']' if ':' in loopback else loopback}:{settings.port}"
            backend = RayBackend(RegistryPreparer() if on_node else preparer, settings.logs_dir,
                                 address=settings.ray_address, start_timeout=settings.replica_start_timeout_s,
                                 prepare_in_replica=on_node, resolve_env=secrets.resolve_env,
                                 fetch_access=ReplicaTokens(signing_keys.issue, registry.download_uri),
                                 registry_url=settings.ray_registry_url or own_url,
                                 actor_options={"resources": dict(settings.ray_replica_resources)}
                                 if settings.ray_replica_resources else None)
        elif settings.runtime == "local":
            from ladle.runtimes.local import LocalBackend
            from ladle.runtimes.sandbox import make_sandbox, set_non_dumpable

            sockets = socket_dir(settings.run_dir)   # short: a socket's path holds 107 bytes
            sandbox = make_sandbox(settings.worker_isolation, settings.worker_user, settings.home,
                                   also_hide=[sockets])
            if sandbox.mode != "user":  # workers share this uid: close our /proc/<pid>/environ
                set_non_dumpable()
            log.info("replica isolation: %s", sandbox.describe())
            backend = LocalBackend(preparer, settings.run_dir, settings.logs_dir, settings.replica_start_timeout_s,
                                   warm_spares=settings.warm_spares, sandbox=sandbox,
                                   template_eager=settings.replica_template_eager, template_prestarted=template,
                                   socket_dir=sockets)
        else:
            raise ValueError(f"LADLE_RUNTIME must be local or ray, not {settings.runtime!r}")
    external = ExternalCaller(secrets.resolve, settings.request_timeout_s)
    metrics = MetricsHub()
    history = MetricsHistory(metrics, settings.metrics_history_interval_s)
    tables = SpooledWriter(DeltaSink(settings.tables_dir), Spool.claim(settings.spool_dir), settings.table_flush_rows,
                           settings.table_flush_interval_s, settings.table_queue_rows)
    limiter = None
    if settings.redis_url:
        from ladle.gateway.ratelimit_redis import RedisLimiter

        limiter = RedisLimiter.from_url(settings.redis_url)
    elif listen is not None and settings.gateway_limits == "shared":
        # the gateway processes count in one shared-memory table that every worker inherits:
        # exact, without a round trip to this process per request (gateway/ratelimit_shm.py)
        from ladle.gateway.ratelimit_shm import SharedLimiter

        limiter = SharedLimiter.create()
    share = None     # request metrics summed across the servers sharing this Redis
    if settings.redis_url:
        from ladle.telemetry.metrics_share import MetricsShare

        share = MetricsShare.from_url(settings.redis_url, tables.spool.id, metrics, settings.metrics_share_interval_s)
    gateway = Gateway(ReplicaPool(backend, settings.request_timeout_s, settings.replica_start_timeout_s),
                      metrics, perms.level, settings.max_payload_bytes,
                      limiter=limiter,
                      recorder=Recorder(tables, "ladle", settings.workspace_id), external=external,
                      # endpoint_missed (below) needs the reconciler built after the gateway
                      on_miss=(lambda name: endpoint_missed(name)) if store.shared else None,
                      # builds nothing until an endpoint or the env asks for traces
                      otel=Otel(mlflow=(mlflow_url, mlflow_token), logs_dir=settings.logs_dir))
    workers = None
    if listen is not None:      # the request path in more processes (gateway/workers.py)
        from ladle.gateway.workers import GatewayWorkers

        workers = GatewayWorkers(
            settings.gateway_processes - 1,
            {"settings": settings, "mlflow": (mlflow_url, mlflow_token), "log_level": log_level,
             "server_socket": listen[1].getsockname()},
            listen[0], settings.logs_dir / "gateway-workers.log", gateway, metrics, tables,
            gateway.limiter, backend)
    publish = gateway.publish if workers is None else workers.publishing(gateway.publish)
    reconciler = Reconciler(store, backend if workers is None else workers.observed_backend(), publish,
                            settings.logs_dir,
                            settings.scale_to_zero_idle_s, settings.reconcile_interval_s,
                            cpu_count=settings.max_replicas_per_entity or None, metrics=metrics,
                            knobs=Knobs(settings.autoscale_target_in_flight, settings.autoscale_up_window_s,
                                        settings.autoscale_down_window_s, settings.autoscale_cooldown_s,
                                        settings.autoscale_enabled))
    backend.set_notify(reconciler.kick)

    on_change = reconciler.changed

    async def endpoint_missed(name: str) -> None:
        """An endpoint name this server does not know: made on another server since the last
        sync? Then load what serving it needs (ACLs, secrets, routes) now, off the event loop."""
        if await store.call(store.get_endpoint, name) is not None:
            for reload in (perms.reload, secrets.reload):
                await store.call(reload)
            await on_change()

    sync = StateSync(store, settings.sync_interval_s,
                     [tokens_svc.reload, authenticator.reload, perms.reload, registry_acl.reload, groups.reload, secrets.reload, on_change])

    endpoint_svc = EndpointService(store, perms, registry, on_change, catalog=catalog,
                                   seal=secrets.seal_plaintext, check_secrets=secrets.check_references,
                                   model_access=lambda p, name: registry_acl.require(
                                       p, "registered-models", name, "CAN_READ"),
                                   models_dir=settings.models_dir)
    svc = Services(settings, endpoint_svc, perms, tokens_svc, backend, metrics, gateway, mlflow_url)
    if share is not None:   # the other servers ask the reconciler's one for replica logs
        from ladle.telemetry.peers import Peers

        svc.peers = Peers(share.redis, tables.spool.id, settings.public_url, lambda: reconciler.leading,
                          settings.metrics_share_interval_s)

    async def pay_per_token(only: str | None = None) -> list[str]:
        from ladle.control.foundation_endpoints import ensure_pay_per_token

        if not (local_runtime and settings.foundation_endpoints):
            return []
        return await ensure_pay_per_token(endpoint_svc, perms, catalog, only)

    mlflow_http = mlflow_proxy.upstream_client(mlflow_url, registry.changed if tracking is not None else None)
    app_http = app_proxy.upstream_client()

    async def require_app(p: Principal, name: str, level: str) -> None:
        await store.call(apps.row, p, name, level)      # ApiError: no such app (for p), or too low a level

    app_gate = AppGate(lambda name: apps.runner.port(name), authenticator.authenticate, authenticator.verify,
                       signing_keys, lambda p, name: require_app(p, name, "CAN_USE"))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if tracking is not None:
            await tracking.start()
            if settings.registry_eager:   # it starts on a pending connection: one made now
                await asyncio.to_thread(_connect_once, tracking.port)
        await reconciler.start()
        await app_deployer.resume()
        tables.start()
        if workers is not None:
            await workers.start()
        await pay_per_token()
        # What start-up built lives as long as the server: keep it out of the collector's
        # full passes (fewer, shorter pauses on the request path).
        gc.collect()
        gc.freeze()
        loop = asyncio.get_running_loop()
        background = [loop.create_task(history.run())]
        if store.shared:
            background.append(loop.create_task(sync.run()))
            background.append(loop.create_task(sync.listen(store.listen_url() or "")))
        if share is not None:
            background.append(loop.create_task(share.run()))
        if svc.peers is not None:
            background.append(loop.create_task(svc.peers.run()))
        try:
            yield
        finally:
            for t in background:
                t.cancel()
            await external.aclose()
            if gateway.otel is not None:
                await asyncio.to_thread(gateway.otel.shutdown)   # flushes queued spans (bounded wait)
            if limiter is not None:
                await limiter.aclose()
            if share is not None:
                with contextlib.suppress(Exception):   # the last counts, when Redis answers at once
                    await asyncio.wait_for(share.share(), 2.0)
                await share.aclose()
            if workers is not None:
                await workers.stop()
            await tables.stop()
            await reconciler.stop()
            await app_deployer.close()
            await apps.close()
            await backend.close()
            await asyncio.to_thread(remove_socket_dir, settings.run_dir)
            await registry.aclose()
            await registry_lookups.aclose()
            await mlflow_http.aclose()
            await app_http.aclose()
            if tracking is not None:
                await tracking.stop()
            store.close()

    # the Responses API in front of the gateway (it reads served models' MLmodel task)
    responses = responses_routes.ResponsesFront(
        gateway, lambda name, version: model_task(settings.models_dir, name, version))
    routes: list[Route] = [
        *endpoints.routes(svc), *permissions.routes(svc), *tokens.routes(svc),
        *openai_routes.routes(gateway), *secrets_api.routes(secrets),
        *responses.routes(),
        *foundation_api.routes(catalog, pay_per_token), *dataplane.routes(svc, responses.invoke), *mlflow_proxy.routes(mlflow_http, mlflow_token, registry_acl, registry_lookups),
        *registry_permissions_api.routes(registry_acl, registry_lookups),
        *unity_catalog_api.routes(catalog, registry_acl, registry_lookups),
        *groups_api.routes(groups), *scim_api.routes(principals),
        *oidc.routes(signing_keys, oauth_grants, token_grants, authenticator.authenticate,
                     settings.workspace_id),
        *oauth_secrets_api.routes(oauth_secrets),
        *apps_api.routes(apps, app_deployer), *workspace_api.routes(workspace_files),
        *app_logs.routes(lambda name: apps.runner.log_path(name), require_app),
        *app_proxy.routes(app_http, app_gate), *app_ws.routes(app_gate),
        *usage_api.routes(svc, tables, settings.tables_dir),
        *metrics_history_api.routes(svc, history), *openapi_own.routes(),
    ]
    from ladle.web.pages import routes as web_routes

    routes += web_routes()
    handlers = {ApiError: api_error, HTTPException: http_error, ClientDisconnect: client_gone,
                OperationalError: database_away, PoolTimeout: database_away,
                DatabaseBusy: database_away, Exception: internal_error}
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)  # type: ignore[arg-type]
    app.state.services = svc
    app.state.reconciler = reconciler
    app.state.signing_keys = signing_keys
    app.state.apps = apps
    # invocations straight to the gateway (dataplane.HotPath), the rest through the app
    served = server_relay.relayed_client(   # a worker's relayed request keeps its caller's address
        AuthMiddleware(dataplane.HotPath(app, responses.invoke, handlers), authenticator.authenticate))
    return served if workers is None else workers.barrier(served)  # type: ignore[return-value]
