// One app: status, URL, its service principal, resources (serving endpoints link to their
// pages), deployments, the log, and Start/Stop for those with CAN_MANAGE. Polled quickly while
// something changes (a deployment, a start or a stop).
import { api, enc, get } from "../api.js";
import { errorBox, fmtTime, h, relTime, replace, toast } from "../dom.js";
import { appBadge, appBusy, computeBadge, deploymentBadge, levelFrom } from "../app_states.js";
import { whoami } from "../whoami.js";
import { mountLogs } from "./app_logs.js";

const FAST_MS = 2000;
const SLOW_MS = 10000;
const ms = (iso) => (iso ? Date.parse(iso) : 0);
const when = (iso) => h("span", { title: fmtTime(ms(iso)) }, relTime(ms(iso)));

function resourcesTable(app) {
  const rows = (app.resources || []).map((r) => {
    let kind = "—", target = "—", level = "—";
    if (r.serving_endpoint) {
      kind = "Serving endpoint";
      target = h("a", { href: `/ui/endpoints/${enc(r.serving_endpoint.name)}` }, r.serving_endpoint.name);
      level = r.serving_endpoint.permission;
    } else if (r.secret) {
      kind = "Secret";
      target = h("span", { class: "mono" }, `${r.secret.scope}/${r.secret.key}`);
      level = r.secret.permission;
    }
    return h("tr", { "data-resource": r.name }, h("td", { class: "mono" }, r.name), h("td", {}, kind), h("td", {}, target), h("td", {}, level));
  });
  if (!rows.length) return h("p", { class: "muted" }, "No resources: the app's service principal has no grants from it.");
  return h("table", { class: "fixed", id: "app-resources" },
    h("colgroup", {}, [26, 22, 32, 20].map((w) => h("col", { style: { width: `${w}%` } }))),
    h("thead", {}, h("tr", {}, ["Key", "Kind", "Resource", "Permission"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows));
}

function deploymentsTable(list, active) {
  if (!list.length) return h("p", { class: "muted" }, "No deployments yet. Deploy with ", h("code", {}, "ladle apps deploy"), ".");
  const rows = list.map((d) => h("tr", { "data-deployment": d.deployment_id },
    h("td", { class: "mono", title: d.deployment_id }, d.deployment_id.slice(0, 8), d.deployment_id === active ? h("div", { class: "small muted" }, "active") : null),
    h("td", {}, h("div", { class: "state-cell" }, deploymentBadge(d), d.status && d.status.message ? h("span", { class: "small muted" }, d.status.message) : null)),
    h("td", { class: "mono small" }, d.source_code_path),
    h("td", {}, d.creator || "—"),
    h("td", {}, when(d.create_time))));
  return h("table", { class: "fixed", id: "app-deployments" },
    h("colgroup", {}, [16, 34, 26, 12, 12].map((w) => h("col", { style: { width: `${w}%` } }))),
    h("thead", {}, h("tr", {}, ["Deployment", "Status", "Source", "Creator", "Created"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows));
}

export function render(root, params, ctx) {
  const name = params.name;
  const path = `/api/2.0/apps/${enc(name)}`;
  ctx.title(name);
  let app = null;
  let level = null;
  let timer = null;
  let alive = true;
  let logs = null;
  let wasBusy = false;

  const badges = h("div", { class: "chips", "aria-live": "polite" });
  const open = h("a", { class: "btn", target: "_blank", rel: "noopener", hidden: true }, "Open app");
  const startBtn = h("button", { type: "button", class: "btn", disabled: true, onclick: () => act("start") }, "Start");
  const stopBtn = h("button", { type: "button", class: "btn", disabled: true, onclick: () => act("stop") }, "Stop");
  const error = errorBox();
  const details = h("dl", { class: "props", id: "app-props" });
  const resources = h("div", { class: "table-wrap" });
  const deployments = h("div", { class: "table-wrap" }, h("p", { class: "muted" }, h("span", { class: "spinner" }), " Loading…"));
  const logsHost = h("div", {});

  const content = h("div", { class: "grid2" },
    h("div", {},
      h("div", { class: "panel" }, h("h2", {}, "Resources"), resources),
      h("div", { class: "panel" }, h("h2", {}, "Deployments"), deployments)),
    h("div", {}, h("div", { class: "panel" }, h("h2", {}, "Details"), details)));

  const prop = (key, label, ...value) => [h("dt", {}, label), h("dd", { "data-prop": key }, ...value)];

  function paint() {
    replace(badges, appBadge(app), computeBadge(app));
    open.href = app.url;
    open.hidden = false;
    const manage = level === "CAN_MANAGE";
    const compute = app.compute_status && app.compute_status.state;
    startBtn.disabled = !manage || !["STOPPED", "ERROR"].includes(compute);
    stopBtn.disabled = !manage || ["STOPPED", "STOPPING", "DELETING"].includes(compute);
    for (const b of [startBtn, stopBtn]) b.title = manage ? "" : "You need CAN_MANAGE on this app";
    const active = app.active_deployment;
    replace(details,
      prop("status", "Status", (app.app_status && app.app_status.message) || "—"),
      prop("compute", "Compute", (app.compute_status && app.compute_status.message) || "—"),
      prop("url", "URL", h("a", { href: app.url, target: "_blank", rel: "noopener" }, app.url)),
      prop("service-principal", "Service principal", app.service_principal_name || app.name),
      prop("application-id", "Application id", h("span", { class: "mono" }, app.service_principal_client_id || "—")),
      prop("source", "Source", active ? h("span", { class: "mono" }, active.source_code_path) : (app.default_source_code_path || "—")),
      app.description ? prop("description", "Description", app.description) : null,
      prop("creator", "Creator", app.creator || "—"),
      prop("created", "Created", fmtTime(ms(app.create_time))),
      prop("updated", "Last updated", when(app.update_time)),
      prop("level", "Your permission", level || "—"));
    replace(resources, resourcesTable(app));
  }

  async function loadDeployments() {
    try {
      const data = await get(`${path}/deployments`);
      if (!alive) return;
      const list = (data.app_deployments || []).sort((a, b) => ms(b.create_time) - ms(a.create_time));
      replace(deployments, deploymentsTable(list, app && app.active_deployment && app.active_deployment.deployment_id));
    } catch (e) {
      if (alive) replace(deployments, h("p", { class: "alert alert-error", role: "alert" }, e.toString()));
    }
  }

  async function load() {
    clearTimeout(timer);
    try {
      const [fresh, acl, me] = await Promise.all([get(path), level ? null : get(`/api/2.0/permissions/apps/${enc(name)}`), level ? null : whoami()]);
      if (!alive) return;
      app = fresh;
      if (!level) level = levelFrom(acl, me) || "CAN_USE";
      error.show(null);
      paint();
      await loadDeployments();
      if (!alive) return;
      const busy = appBusy(app);
      if (logs && (busy || wasBusy)) logs.reload();     // while something changes the log says what
      wasBusy = busy;
      if (!logs && level === "CAN_MANAGE") logs = mountLogs(logsHost, name);
      else if (!logs) replace(logsHost, h("div", { class: "panel" }, h("h2", {}, "Logs"), h("p", { class: "muted" }, "Reading an app's log needs CAN_MANAGE on it.")));
      timer = setTimeout(load, busy ? FAST_MS : SLOW_MS);
    } catch (e) {
      if (!alive) return;
      error.show(e);
      if (e.status === 404) { content.hidden = true; logsHost.hidden = true; return; }
      timer = setTimeout(load, SLOW_MS);
    }
  }

  async function act(what) {
    clearTimeout(timer);
    startBtn.disabled = stopBtn.disabled = true;
    try {
      app = await api("POST", `${path}/${what}`);
      toast(what === "start" ? `Starting ${name}` : `Stopped ${name}`);
      paint();
      if (logs) logs.reload();
      timer = setTimeout(load, FAST_MS);
    } catch (e) {
      error.show(e);
      if (app) paint();
    }
  }

  root.append(
    h("nav", { "aria-label": "Breadcrumb", class: "small", style: { marginBottom: ".35rem" } }, h("a", { href: "/ui/apps" }, "Apps"), " / "),
    h("div", { class: "page-head" }, h("h1", {}, name), badges, h("div", { class: "actions" }, open, startBtn, stopBtn)),
    error, content, logsHost);
  load();
  return { cleanup() { alive = false; clearTimeout(timer); if (logs) logs.cleanup(); } };
}
