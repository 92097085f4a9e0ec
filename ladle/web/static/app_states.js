// How apps, their compute and their deployments look: colour plus words, as states.js does for endpoints.
import { badge } from "./states.js";

const APP = {
  RUNNING: ["ok", "Running"],
  DEPLOYING: ["warn", "Deploying"],
  CRASHED: ["bad", "Crashed"],
  UNAVAILABLE: ["idle", "Unavailable"],
};
const COMPUTE = {
  ACTIVE: ["ok", "Compute active"],
  STARTING: ["warn", "Compute starting"],
  STOPPING: ["warn", "Compute stopping"],
  STOPPED: ["idle", "Compute stopped"],
  UPDATING: ["warn", "Compute updating"],
  DELETING: ["warn", "Deleting"],
  ERROR: ["bad", "Compute error"],
};
const DEPLOYMENT = {
  SUCCEEDED: ["ok", "Succeeded"],
  IN_PROGRESS: ["warn", "In progress"],
  FAILED: ["bad", "Failed"],
  CANCELLED: ["idle", "Cancelled"],
};

function pick(table, st) {
  const state = st && st.state;
  const [kind, text] = table[state] || ["idle", state || "Unknown"];
  return badge(kind, text, [state, st && st.message].filter(Boolean).join(": "));
}

export const appBadge = (app) => pick(APP, app.app_status);
export const computeBadge = (app) => pick(COMPUTE, app.compute_status);
export const deploymentBadge = (d) => pick(DEPLOYMENT, d && d.status);

// Something is changing: the page asks again soon.
export function appBusy(app) {
  const c = app.compute_status && app.compute_status.state;
  const a = app.app_status && app.app_status.state;
  return Boolean(app.pending_deployment) || a === "DEPLOYING" || ["STARTING", "STOPPING", "UPDATING", "DELETING"].includes(c);
}

// The serving endpoints an app's resources name.
export const endpointsOf = (app) => (app.resources || []).filter((r) => r.serving_endpoint);

// The caller's level on an app from its ACL (GET /api/2.0/permissions/apps/{name}) and who they
// are: admins manage every app; otherwise the best direct or group grant ("users" is everyone).
export function levelFrom(acl, me) {
  if (!me) return null;
  if (me.isAdmin) return "CAN_MANAGE";
  const mine = (e) => (e.user_name && me.kind === "user" && e.user_name === me.name)
    || (e.service_principal_name && me.kind === "service_principal" && e.service_principal_name === me.name)
    || (e.group_name && (e.group_name === "users" || me.groups.includes(e.group_name)));
  let best = null;
  for (const e of (acl && acl.access_control_list) || []) {
    if (!mine(e)) continue;
    for (const p of e.all_permissions || []) {
      if (p.permission_level === "CAN_MANAGE") return "CAN_MANAGE";
      if (p.permission_level === "CAN_USE") best = "CAN_USE";
    }
  }
  return best;
}
