// How endpoint and served-entity states look: colour plus words, the same everywhere.
import { h } from "./dom.js";

const UPDATE = {
  NOT_UPDATING: null,
  IN_PROGRESS: ["warn", "Updating"],
  UPDATE_FAILED: ["bad", "Update failed"],
  UPDATE_CANCELED: ["idle", "Update canceled"],
};
const DEPLOYMENT = {
  DEPLOYMENT_READY: ["ok", "Ready"],
  DEPLOYMENT_CREATING: ["warn", "Creating"],
  DEPLOYMENT_RECOVERING: ["warn", "Recovering"],
  DEPLOYMENT_FAILED: ["bad", "Failed"],
  DEPLOYMENT_ABORTED: ["idle", "Aborted"],
};

export function badge(kind, text, title) {
  return h("span", { class: `badge badge-${kind}`, title }, text);
}

export function readyBadge(state) {
  const ready = state && state.ready === "READY";
  return badge(ready ? "ok" : "bad", ready ? "Ready" : "Not ready", state && state.ready);
}

export function updateBadge(state) {
  const u = UPDATE[state && state.config_update];
  return u ? badge(u[0], u[1], state.config_update) : null;
}

export function stateCell(state) {
  return h("div", { class: "state-cell" }, readyBadge(state), updateBadge(state));
}

export function deploymentBadge(st) {
  const d = st && DEPLOYMENT[st.deployment];
  if (!d) return badge("idle", (st && st.deployment) || "Unknown");
  return badge(d[0], d[1], st.deployment);
}

export const inProgress = (ep) => Boolean(ep && ep.state && ep.state.config_update === "IN_PROGRESS");

export function entityLabel(e) {
  if (e.external_model) return `${e.external_model.provider} · ${e.external_model.name}`;
  if (e.foundation_model) return e.foundation_model.display_name || e.foundation_model.name;
  return e.entity_version ? `${e.entity_name} v${e.entity_version}` : e.entity_name || e.name;
}
