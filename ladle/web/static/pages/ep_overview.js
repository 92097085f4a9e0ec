// Overview tab: details, pending update with progress, served entities with their
// deployment state, tags (editable by managers) and the apps that use the endpoint.
import { api, epPath } from "../api.js";
import { copyButton, field, fmtTime, h, relTime, replace } from "../dom.js";
import { deploymentBadge, entityLabel } from "../states.js";
import { usedByApps } from "./ep_apps.js";

function trafficOf(cfg) {
  const m = new Map();
  for (const r of (cfg && cfg.traffic_config && cfg.traffic_config.routes) || []) m.set(r.served_entity_name || r.served_model_name, r.traffic_percentage);
  return m;
}

function entitiesTable(cfg, id) {
  const traffic = trafficOf(cfg);
  const rows = (cfg.served_entities || []).map((e) => h("tr", { "data-entity": e.name },
    h("td", { class: "mono" }, e.name),
    h("td", {}, entityLabel(e)),
    h("td", {}, e.external_model ? e.external_model.task : [e.workload_size || "Small", e.workload_type && e.workload_type !== "CPU" ? ` · ${e.workload_type}` : "", e.scale_to_zero_enabled ? " · scales to zero" : ""].join("")),
    h("td", { class: "num" }, traffic.has(e.name) ? `${traffic.get(e.name)}%` : "—"),
    h("td", {}, h("div", { class: "state-cell" }, deploymentBadge(e.state),
      e.state && e.state.deployment_state_message ? h("span", { class: "small muted" }, e.state.deployment_state_message) : null))));
  return h("table", { class: "fixed", id },
    h("colgroup", {}, [18, 26, 20, 10, 26].map((w) => h("col", { style: { width: `${w}%` } }))),
    h("thead", {}, h("tr", {}, ["Name", "Entity", "Workload", "Traffic", "Deployment state"].map((t, i) => h("th", { scope: "col", class: i === 3 ? "num" : null }, t)))),
    h("tbody", {}, rows));
}

export function mount(panel, ctx) {
  const details = h("dl", { class: "props" });
  const pending = h("div", {});
  const entities = h("div", { class: "table-wrap" });
  const chips = h("div", { class: "chips", id: "tags" });
  const tagErr = h("div", { class: "alert alert-error", role: "alert", hidden: true });
  const key = h("input", { type: "text", name: "tag_key", spellcheck: "false" });
  const value = h("input", { type: "text", name: "tag_value", spellcheck: "false" });
  const tagForm = h("form", { class: "row row-tight", "aria-label": "Add a tag" },
    field("Tag key", key, { field: "add_tags" }), field("Value", value),
    h("div", { class: "field field-button" }, h("button", { type: "submit", class: "btn" }, "Add tag")));

  async function patchTags(bodyObj) {
    tagErr.hidden = true;
    try {
      await api("PATCH", `${epPath(ctx.name)}/tags`, { body: bodyObj });
      await ctx.reload();
      return true;
    } catch (e) {
      tagErr.textContent = e.toString();
      tagErr.hidden = false;
      return false;
    }
  }
  tagForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!key.value.trim()) { key.focus(); return; }
    if (await patchTags({ add_tags: [{ key: key.value.trim(), value: value.value }] })) { key.value = ""; value.value = ""; key.focus(); }
  });

  function paint(ep) {
    const cfg = ep.config;
    const url = `${location.origin}/serving-endpoints/${ep.name}/invocations`;
    replace(details,
      h("dt", {}, "Invocation URL"), h("dd", {}, h("code", {}, url), " ", copyButton("Copy", () => url)),
      h("dt", {}, "Endpoint id"), h("dd", { class: "mono" }, ep.id),
      h("dt", {}, "Task"), h("dd", {}, ep.task || "Custom model (MLflow scoring protocol)"),
      h("dt", {}, "Creator"), h("dd", {}, ep.creator || "—"),
      h("dt", {}, "Created"), h("dd", {}, fmtTime(ep.creation_timestamp)),
      h("dt", {}, "Last updated"), h("dd", { title: fmtTime(ep.last_updated_timestamp) }, relTime(ep.last_updated_timestamp)),
      h("dt", {}, "Config version"), h("dd", {}, cfg ? String(cfg.config_version) : "—"),
      h("dt", {}, "Your permission"), h("dd", {}, ep.permission_level || "—"));
    const p = ep.pending_config;
    if (p) {
      const ents = p.served_entities || [];
      const ready = ents.filter((e) => e.state && e.state.deployment === "DEPLOYMENT_READY").length;
      const pct = ents.length ? Math.round((100 * ready) / ents.length) : 0;
      replace(pending, h("div", { class: "panel", id: "pending-update" },
        h("h2", {}, `Update in progress: config version ${p.config_version}`),
        h("p", { class: "muted small" }, `Started ${p.start_time ? relTime(p.start_time) : ""}. ${ready} of ${ents.length} served entities ready; traffic switches when all are.`),
        h("div", { class: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": pct, "aria-label": "Update progress" },
          h("div", { style: { width: `${Math.max(pct, 4)}%` } })),
        h("div", { class: "table-wrap", style: { marginTop: ".75rem" } }, entitiesTable(p, "pending-entities"))));
    } else if (ep.state && ep.state.config_update === "UPDATE_FAILED") {
      replace(pending, h("div", { class: "alert alert-error", role: "alert" }, h("strong", {}, "The last update failed. "),
        "See the build logs and logs of the served entities for the reason; the previous config keeps serving."));
    } else {
      replace(pending);
    }
    replace(entities, cfg ? entitiesTable(cfg, "served-entities") : h("p", { class: "muted" }, "No active config yet: the first config is being deployed."));
    const m = ctx.canManage();
    replace(chips, (ep.tags || []).length ? ep.tags.map((t) => h("span", { class: "chip" },
      h("span", {}, t.value ? `${t.key}: ${t.value}` : t.key),
      m ? h("button", { type: "button", class: "btn btn-ghost btn-small", "aria-label": `Remove tag ${t.key}`, onclick: () => patchTags({ delete_tags: [t.key] }) }, "×") : null))
      : h("span", { class: "muted" }, "No tags"));
    tagForm.hidden = !m;
  }

  panel.append(
    pending,
    h("div", { class: "grid2" },
      h("div", {}, h("div", { class: "panel" }, h("h2", {}, "Served entities"), entities)),
      h("div", {},
        h("div", { class: "panel" }, h("h2", {}, "Details"), details),
        h("div", { class: "panel" }, h("h2", {}, "Tags"), tagErr, chips, h("div", { style: { marginTop: ".75rem" } }, tagForm)),
        usedByApps(ctx.name))));
  if (ctx.ep) paint(ctx.ep);
  return { cleanup: ctx.onEndpoint(paint) };
}
