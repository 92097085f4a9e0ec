"""Every operation of ladle's own API: the one table its OpenAPI document
(`ladle.api.openapi_own`) is built from. Handlers validate with the models named here;
tests/unit/test_openapi_own.py checks the table against the routes the app really serves."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from ladle.schemas import app_logs as al
from ladle.schemas import apps as ap
from ladle.schemas import endpoints as ep
from ladle.schemas import endpoints_out as epo
from ladle.schemas import groups as gr
from ladle.schemas import permissions as pm
from ladle.schemas import registry_permissions as rp
from ladle.schemas import scim as scim
from ladle.schemas import secrets as sc
from ladle.schemas import tokens as tk
from ladle.schemas import catalog as ct
from ladle.schemas import metrics as mt
from ladle.schemas import oauth as oa
from ladle.schemas import unity_catalog as uc
from ladle.schemas import usage as us
from ladle.schemas.gateway import AiGatewayConfig
from ladle.schemas.wire import Empty

# Any authenticated call: 401 without a valid token, 503 while a shared database is away.
ALWAYS = (401, 503)
METRICS_TEXT = "text/plain"


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    answer: type[BaseModel] | str = Empty      # a model, or the media type of a text answer
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    answer_text: str = "OK"


SE = "/api/2.0/serving-endpoints"
ONE = SE + "/{name}"
PERMS = "/api/2.0/permissions/serving-endpoints/{id}"
GROUPS = "/api/2.0/ladle/groups"
SECRETS = "/api/2.0/secrets"
FOUNDATION = "/api/2.0/ladle/foundation-models"
UC = "/api/2.1/unity-catalog/models"
APPS = "/api/2.0/apps"
APP = APPS + "/{name}"
APP_PERMS = "/api/2.0/permissions/apps/{name}"
WS = "/api/2.0/workspace"
SCIM = "/api/2.0/preview/scim/v2"
SP_SECRETS = "/api/2.0/accounts/servicePrincipals/{service_principal_id}/credentials/secrets"
ENDPOINT_ERRORS = (403, 404)
WRITE_ERRORS = (403, 404, 409)

OPERATIONS: tuple[Op, ...] = (
    # -- serving endpoints ----------------------------------------------------------------
    Op("GET", SE, "listServingEndpoints", "List the endpoints the caller can see", "serving-endpoints",
       epo.ListEndpointsResponse),
    Op("POST", SE, "createServingEndpoint", "Create an endpoint", "serving-endpoints",
       epo.ServingEndpointDetailed, ep.CreateEndpointRequest, errors=(403, 409)),
    Op("POST", SE + "/pt", "createProvisionedThroughputEndpoint", "Create a provisioned throughput endpoint",
       "serving-endpoints", epo.ServingEndpointDetailed, ep.CreatePtEndpointRequest, errors=(403, 409)),
    Op("PUT", SE + "/pt/{name}/config", "updateProvisionedThroughputConfig",
       "Update a provisioned throughput endpoint's config", "serving-endpoints",
       epo.ServingEndpointDetailed, ep.UpdatePtConfigRequest, errors=WRITE_ERRORS),
    Op("GET", ONE, "getServingEndpoint", "Get an endpoint", "serving-endpoints",
       epo.ServingEndpointDetailed, errors=ENDPOINT_ERRORS),
    Op("DELETE", ONE, "deleteServingEndpoint", "Delete an endpoint", "serving-endpoints",
       errors=WRITE_ERRORS),
    Op("PUT", ONE + "/config", "updateServingEndpointConfig", "Update an endpoint's served entities and traffic",
       "serving-endpoints", epo.ServingEndpointDetailed, ep.EndpointCoreConfigInput, errors=WRITE_ERRORS),
    Op("PUT", ONE + "/ai-gateway", "putAiGateway", "Set an endpoint's AI Gateway", "serving-endpoints",
       epo.PutAiGatewayResponse, AiGatewayConfig, errors=WRITE_ERRORS),
    Op("PUT", ONE + "/rate-limits", "putRateLimits", "Set an endpoint's (legacy) rate limits",
       "serving-endpoints", epo.PutRateLimitsResponse, ep.PutRateLimitsRequest, errors=WRITE_ERRORS),
    Op("PATCH", ONE + "/tags", "patchServingEndpointTags", "Add and delete tags", "serving-endpoints",
       epo.TagsResponse, ep.PatchTagsRequest, errors=WRITE_ERRORS),
    Op("PATCH", ONE + "/notifications", "updateNotifications", "Set e-mail notifications",
       "serving-endpoints", epo.NotificationsResponse, ep.UpdateNotificationsRequest, errors=WRITE_ERRORS),
    Op("PATCH", ONE + "/telemetry-config", "patchTelemetryConfig", "Set the telemetry config",
       "serving-endpoints", epo.ServingEndpointDetailed, ep.PatchTelemetryRequest, errors=WRITE_ERRORS),
    Op("GET", ONE + "/metrics", "exportMetrics", "The endpoint's metrics in Prometheus text format",
       "serving-endpoints", METRICS_TEXT, errors=ENDPOINT_ERRORS),
    Op("GET", ONE + "/openapi", "getServingEndpointOpenApi", "The endpoint's invocations OpenAPI document",
       "serving-endpoints", epo.OpenApiDocument, errors=ENDPOINT_ERRORS),
    Op("GET", ONE + "/served-models/{served}/logs", "getServedModelLogs", "A served entity's runtime log",
       "serving-endpoints", epo.ServedModelLogs, errors=ENDPOINT_ERRORS),
    Op("GET", ONE + "/served-models/{served}/build-logs", "getServedModelBuildLogs",
       "A served entity's build log", "serving-endpoints", epo.ServedModelLogs, errors=ENDPOINT_ERRORS),
    Op("GET", "/api/2.0/ladle/serving-endpoints/{name}/metrics-history", "getMetricsHistory",
       "The last hour of the endpoint's request metrics (ladle)", "serving-endpoints",
       mt.MetricsHistoryResponse, errors=ENDPOINT_ERRORS),
    # -- permissions --------------------------------------------------------------------
    Op("GET", PERMS + "/permissionLevels", "getServingEndpointPermissionLevels", "Permission levels",
       "permissions", pm.PermissionLevelsResponse, errors=ENDPOINT_ERRORS),
    Op("GET", PERMS, "getServingEndpointPermissions", "An endpoint's access control list", "permissions",
       pm.ObjectPermissions, errors=ENDPOINT_ERRORS),
    Op("PUT", PERMS, "setServingEndpointPermissions", "Replace an endpoint's direct grants", "permissions",
       pm.ObjectPermissions, pm.PermissionsRequest, errors=ENDPOINT_ERRORS),
    Op("PATCH", PERMS, "updateServingEndpointPermissions", "Add or change grants", "permissions",
       pm.ObjectPermissions, pm.PermissionsRequest, errors=ENDPOINT_ERRORS),
    # -- registry permissions (MLflow experiments by id, registered models by name) -----
    *(op for kind, noun in (("experiments", "Experiment"), ("registered-models", "RegisteredModel"))
      for op in (
          Op("GET", f"/api/2.0/permissions/{kind}/{{id}}/permissionLevels", f"get{noun}PermissionLevels",
             "Permission levels", "permissions", pm.PermissionLevelsResponse, errors=(400, 403, 404)),
          Op("GET", f"/api/2.0/permissions/{kind}/{{id}}", f"get{noun}Permissions",
             "Its access control list", "permissions", pm.ObjectPermissions, errors=(400, 403, 404)),
          Op("PUT", f"/api/2.0/permissions/{kind}/{{id}}", f"set{noun}Permissions",
             "Replace its grants (the owner stays)", "permissions", pm.ObjectPermissions,
             rp.RegistryPermissionsRequest, errors=(400, 403, 404)),
          Op("PATCH", f"/api/2.0/permissions/{kind}/{{id}}", f"update{noun}Permissions",
             "Add or change grants", "permissions", pm.ObjectPermissions,
             rp.RegistryPermissionsRequest, errors=(400, 403, 404)))),
    # -- tokens -------------------------------------------------------------------------
    Op("POST", "/api/2.0/token/create", "createToken", "A token for the caller", "tokens",
       tk.CreateTokenResponse, tk.CreateTokenRequest),
    Op("GET", "/api/2.0/token/list", "listOwnTokens", "The caller's own tokens", "tokens",
       tk.ListTokensResponse),
    Op("POST", "/api/2.0/token/delete", "deleteOwnToken", "Revoke a token of the caller's (admins: any)",
       "tokens", body=tk.DeleteTokenRequest, errors=(400, 403, 404)),
    Op("POST", "/api/2.0/token-management/on-behalf-of/tokens", "createOboToken",
       "A token for a user or service principal", "tokens", tk.CreateTokenResponse,
       tk.CreateOboTokenRequest, errors=(403,)),
    Op("GET", "/api/2.0/token-management/tokens", "listTokens", "Every token (admins)", "tokens",
       tk.ListTokensResponse, query=tk.ListTokensQuery, errors=(400, 403)),
    Op("GET", "/api/2.0/token-management/tokens/{token_id}", "getToken", "One token's info (admins)",
       "tokens", tk.GetTokenResponse, errors=(403, 404)),
    Op("DELETE", "/api/2.0/token-management/tokens/{token_id}", "revokeToken",
       "Revoke a token (admins: any; others: their own)", "tokens", errors=(403, 404)),
    # -- secrets (models: ladle.schemas.secrets) -------------------------------------------
    Op("POST", SECRETS + "/scopes/create", "createSecretScope", "Create a scope", "secrets",
       body=sc.CreateScope, errors=(403, 409)),
    Op("GET", SECRETS + "/scopes/list", "listSecretScopes", "Scopes the caller can read", "secrets",
       sc.ListScopesResponse),
    Op("POST", SECRETS + "/scopes/delete", "deleteSecretScope", "Delete a scope", "secrets",
       body=sc.ScopeRef, errors=(403, 404)),
    Op("POST", SECRETS + "/put", "putSecret", "Store a secret", "secrets", body=sc.PutSecret,
       errors=(403, 404)),
    Op("GET", SECRETS + "/list", "listSecrets", "A scope's keys (never values)", "secrets",
       sc.ListSecretsResponse, query=sc.ScopeRef, errors=(403, 404)),
    Op("POST", SECRETS + "/delete", "deleteSecret", "Delete a secret", "secrets", body=sc.SecretRef,
       errors=(403, 404)),
    Op("GET", SECRETS + "/get", "getSecret", "Refused: values are never returned over HTTP", "secrets",
       query=sc.SecretRef, errors=(403, 404)),
    Op("POST", SECRETS + "/acls/put", "putSecretAcl", "Grant a principal READ, WRITE or MANAGE on a scope",
       "secrets", body=sc.PutAcl, errors=(403, 404)),
    Op("GET", SECRETS + "/acls/get", "getSecretAcl", "A principal's permission on a scope", "secrets",
       sc.AclItem, query=sc.AclRef, errors=(403, 404)),
    Op("GET", SECRETS + "/acls/list", "listSecretAcls", "A scope's ACL", "secrets", sc.ListAclsResponse,
       query=sc.ScopeRef, errors=(403, 404)),
    Op("POST", SECRETS + "/acls/delete", "deleteSecretAcl", "Remove a principal's permission on a scope",
       "secrets", body=sc.AclRef, errors=(403, 404)),
    # -- groups -------------------------------------------------------------------------
    Op("GET", GROUPS, "listGroups", "Groups and their members", "groups", gr.ListGroupsResponse),
    Op("POST", GROUPS, "createGroup", "Create a group (admins)", "groups", gr.Group, gr.CreateGroupRequest,
       errors=(403, 409)),
    Op("DELETE", GROUPS + "/{name}", "deleteGroup", "Delete a group (admins)", "groups", errors=(403, 404)),
    Op("POST", GROUPS + "/{name}/members", "addGroupMember", "Add a member (admins)", "groups", gr.Group,
       gr.AddMemberRequest, errors=(403, 404)),
    Op("DELETE", GROUPS + "/{name}/members/{member}", "removeGroupMember", "Remove a member (admins)",
       "groups", gr.Group, errors=(403, 404)),
    # -- SCIM (databricks-sdk's iam API): reads for everyone, changes for admins --------
    Op("GET", SCIM + "/Me", "getCurrentUser", "The caller", "scim", scim.Me, query=scim.GetQuery),
    *(op for path, noun, out, lst, create in (
        ("Users", "User", scim.User, scim.ListUsers, scim.CreateUser),
        ("ServicePrincipals", "ServicePrincipal", scim.ServicePrincipal, scim.ListServicePrincipals,
         scim.CreateServicePrincipal))
      for op in (
          Op("GET", f"{SCIM}/{path}", f"list{path}", f"{path}, filtered and paged", "scim", lst,
             query=scim.ListQuery),
          Op("POST", f"{SCIM}/{path}", f"create{noun}", "Create one (admins)", "scim", out, create,
             errors=(403, 404, 409)),
          Op("GET", f"{SCIM}/{path}/{{id}}", f"get{noun}", "Get one by id", "scim", out,
             query=scim.GetQuery, errors=(404,)),
          Op("DELETE", f"{SCIM}/{path}/{{id}}", f"delete{noun}",
             "Delete one (admins): its tokens are revoked, its memberships dropped", "scim",
             errors=(400, 403, 404)))),
    # -- service principals' OAuth secrets (admins and the service principal itself) -------
    Op("POST", SP_SECRETS, "createServicePrincipalSecret", "Create an OAuth secret (shown only here)",
       "oauth", oa.CreateServicePrincipalSecretResponse, oa.CreateServicePrincipalSecretRequest,
       errors=(403, 404)),
    Op("GET", SP_SECRETS, "listServicePrincipalSecrets", "List OAuth secrets (no values)", "oauth",
       oa.ListServicePrincipalSecretsResponse, errors=(403, 404)),
    Op("DELETE", SP_SECRETS + "/{secret_id}", "deleteServicePrincipalSecret",
       "Delete (revoke) an OAuth secret and the access tokens issued with it", "oauth", errors=(403, 404)),
    Op("GET", SCIM + "/Groups", "listScimGroups", "Groups, filtered and paged", "scim", scim.ListScimGroups,
       query=scim.ListQuery),
    Op("POST", SCIM + "/Groups", "createScimGroup", "Create a group (admins)", "scim", scim.ScimGroup,
       scim.CreateScimGroup, errors=(403, 404, 409)),
    Op("GET", SCIM + "/Groups/{id}", "getScimGroup", "Get a group by id", "scim", scim.ScimGroup,
       query=scim.GetQuery, errors=(404,)),
    Op("PATCH", SCIM + "/Groups/{id}", "patchScimGroup", "Add or remove members (admins)", "scim",
       scim.ScimGroup, scim.PatchRequest, errors=(403, 404)),
    Op("DELETE", SCIM + "/Groups/{id}", "deleteScimGroup", "Delete a group (admins)", "scim",
       errors=(400, 403, 404)),
    # -- apps (any signed-in principal creates; CAN_USE reads, CAN_MANAGE changes) -------------
    Op("POST", APPS, "createApp", "Create an app and its service principal", "apps", ap.AppOut, ap.CreateApp,
       errors=(400, 403, 409)),
    Op("GET", APPS, "listApps", "The apps the caller can use", "apps", ap.ListAppsOut),
    Op("GET", APP, "getApp", "Get an app", "apps", ap.AppOut, errors=(400, 404)),
    Op("PATCH", APP, "updateApp", "Update an app's description and resources (grants follow)", "apps",
       ap.AppOut, ap.AppBody, errors=(400, 403, 404)),
    Op("DELETE", APP, "deleteApp", "Delete an app, its principal, secret, grants and deployments", "apps",
       ap.AppOut, errors=(400, 403, 404)),
    Op("POST", APP + "/start", "startApp", "Run the app's active deployment", "apps", ap.AppOut,
       errors=(400, 403, 404)),
    Op("POST", APP + "/stop", "stopApp", "Stop the app", "apps", ap.AppOut, errors=(400, 403, 404)),
    Op("POST", APP + "/deployments", "deployApp", "Deploy a workspace folder (runs in the background)",
       "apps", ap.AppDeploymentOut, ap.CreateDeployment, errors=(400, 403, 404, 409)),
    Op("GET", APP + "/deployments", "listAppDeployments", "An app's deployments, newest first", "apps",
       ap.ListAppDeploymentsOut, errors=(400, 404)),
    Op("GET", APP + "/deployments/{deployment_id}", "getAppDeployment", "Get a deployment", "apps",
       ap.AppDeploymentOut, errors=(400, 404)),
    Op("GET", APP_PERMS + "/permissionLevels", "getAppPermissionLevels", "CAN_USE and CAN_MANAGE", "apps",
       pm.PermissionLevelsResponse, errors=(400, 404)),
    Op("GET", APP_PERMS, "getAppPermissions", "Who may use or manage the app", "apps", pm.ObjectPermissions,
       errors=(400, 404)),
    Op("PUT", APP_PERMS, "setAppPermissions", "Replace the app's grants (CAN_MANAGE)", "apps",
       pm.ObjectPermissions, ap.AppPermissionsRequest, errors=(400, 403, 404)),
    Op("PATCH", APP_PERMS, "updateAppPermissions", "Add to the app's grants (CAN_MANAGE)", "apps",
       pm.ObjectPermissions, ap.AppPermissionsRequest, errors=(400, 403, 404)),
    Op("GET", APP + "/logs", "getAppLogs", "The app's output and the runner's lines, last N (CAN_MANAGE)",
       "apps", al.AppLogs, query=al.AppLogsQuery, errors=(400, 403, 404)),
    # -- workspace files (a user's own folder /Users/<name>; admins anywhere) ----------------
    Op("POST", WS + "/import", "importWorkspaceFile", "Write a file (JSON base64, or a multipart form "
       "with a `content` file part)", "workspace", body=ap.ImportBody, errors=(400, 403, 409)),
    Op("POST", WS + "/mkdirs", "mkdirsWorkspace", "Make a folder and its parents", "workspace",
       body=ap.WorkspacePath, errors=(400, 403, 409)),
    Op("GET", WS + "/get-status", "getWorkspaceStatus", "A file's or folder's status", "workspace",
       ap.ObjectInfo, query=ap.WorkspacePath, errors=(400, 403, 404)),
    Op("GET", WS + "/list", "listWorkspace", "A folder's contents", "workspace", ap.ListObjectsOut,
       query=ap.WorkspacePath, errors=(400, 403, 404)),
    Op("POST", WS + "/delete", "deleteWorkspaceObject", "Delete a file or folder (recursive for a "
       "folder with contents)", "workspace", body=ap.DeleteBody, errors=(400, 403, 404)),
    Op("GET", WS + "/export", "exportWorkspaceFile", "A file's content (base64; raw with "
       "direct_download=true)", "workspace", ap.ExportOut, query=ap.ExportQuery, errors=(400, 403, 404)),
    # -- usage and catalog ----------------------------------------------------------------
    Op("GET", "/api/2.0/ladle/usage", "getUsage", "Usage summarised by endpoint, requester or day",
       "usage", us.UsageResponse, query=us.UsageQuery, errors=(404,)),
    Op("GET", FOUNDATION, "listFoundationModels", "ladle's foundation model catalog", "foundation-models",
       ct.FoundationModelsResponse),
    Op("POST", FOUNDATION + "/add-local", "addLocalFoundationModel",
       "Add a local Hugging Face model directory (admins)", "foundation-models", ct.AddLocalModelResponse,
       ct.AddLocalModelRequest, errors=(403,)),
    Op("GET", UC, "listRegisteredModels", "Registered models of a catalog and schema (system.ai: the "
       "foundation models)", "unity-catalog", uc.ListRegisteredModelsResponse, query=uc.ListModelsQuery,
       errors=(400,)),
    Op("GET", UC + "/{full_name}", "getRegisteredModel", "A registered model", "unity-catalog",
       uc.RegisteredModelInfo, query=uc.GetModelQuery, errors=(400, 403, 404)),
    Op("GET", UC + "/{full_name}/versions", "listModelVersions", "A registered model's versions",
       "unity-catalog", uc.ListModelVersionsResponse, query=uc.ListVersionsQuery, errors=(400, 403, 404)),
    Op("GET", UC + "/{full_name}/versions/{version}", "getModelVersion", "A model version", "unity-catalog",
       uc.ModelVersionInfo, errors=(400, 403, 404)),
    Op("GET", UC + "/{full_name}/aliases/{alias}", "getModelVersionByAlias", "The version an alias names",
       "unity-catalog", uc.ModelVersionInfo, errors=(400, 403, 404)),
    Op("GET", "/api/2.0/ladle/openapi.json", "getOwnOpenApi", "This document", "meta", epo.OpenApiDocument),
)
