// One endpoint: header with state and actions, and tabs (overview, query, metrics, logs,
// AI gateway, permissions). The endpoint is polled while an update is in progress.
import { api, epPath, get } from "../api.js";
import { h, replace, toast } from "../dom.js";
import { inProgress, readyBadge, updateBadge } from "../states.js";
import { startSampler } from "../sampler.js";

const TABS = [
  ["overview", "Overview", () => import("./ep_overview.js")],
  ["query", "Query", () => import("./ep_query.js")],
  ["metrics", "Metrics", () => import("./ep_metrics.js")],
  ["logs", "Logs", () => import("./ep_logs.js")],
  ["gateway", "AI gateway", () => import("./ep_gateway.js")],
  ["permissions", "Permissions", () => import("./ep_permissions.js")],
];
const FAST_MS = 2000;
const SLOW_MS = 10000;

const busy = (ep) => inProgress(ep) || scalingNotes(ep).length > 0 || ((ep.config && ep.config.served_entities) || []).some(
  (e) => e.state && ["DEPLOYMENT_CREATING", "DEPLOYMENT_RECOVERING"].includes(e.state.deployment));

// The autoscaler's last decision, while the replicas get there: the reconciler puts it in the
// entity's state message ("scaling up: 1 -> 3 replicas (in-flight 11.0 per replica over 10 s ...)").
function scalingNotes(ep) {
  return ((ep.config && ep.config.served_entities) || [])
    .map((e) => [e.name, (e.state && e.state.deployment_state_message) || ""])
    .filter(([, m]) => /^scaling (up|down): /.test(m))
    .map(([n, m]) => `${n}: ${m.replace(/ -> (\d+) replicas/, " \u2192 $1")}`);
}

export function render(root, params, ctx) {
  const name = params.name;
  ctx.title(name);
  let ep = null;
  let timer = null;
  let alive = true;
  let tab = null; // { id, instance }
  let tabSeq = 0;
  const listeners = new Set();
  const sampler = startSampler(name);

  const badges = h("div", { class: "chips", "aria-live": "polite" });
  const scaling = h("p", { id: "ep-scaling", class: "small muted", role: "status", hidden: true });
  const canManage = () => ep && ep.permission_level === "CAN_MANAGE";
  const editLink = h("a", { class: "btn", href: `/ui/endpoints/${encodeURIComponent(name)}/edit` }, "Edit config");
  const delBtn = h("button", { type: "button", class: "btn btn-danger", onclick: () => dialog.showModal() }, "Delete");
  const dialog = h("dialog", { "aria-labelledby": "del-title" },
    h("form", { method: "dialog" },
      h("h2", { id: "del-title" }, `Delete ${name}?`),
      h("p", {}, "The endpoint, its replicas and its permissions are removed. Models stay in the registry."),
      h("div", { class: "form-actions" },
        h("button", { value: "delete", class: "btn btn-primary" }, "Delete endpoint"),
        h("button", { value: "cancel", class: "btn", autofocus: true }, "Cancel"))));
  dialog.addEventListener("close", async () => {
    if (dialog.returnValue !== "delete") return;
    try { await api("DELETE", epPath(name)); toast(`Deleted ${name}`); ctx.navigate("/ui/endpoints"); } catch (e) { showError(e); }
  });
  const error = h("div", { class: "alert alert-error", role: "alert", hidden: true });
  const tabButtons = TABS.map(([id, label]) => h("button", {
    type: "button", role: "tab", id: `tab-${id}`, "aria-controls": "tab-panel", "aria-selected": "false", tabindex: "-1",
    onclick: () => go(id),
  }, label));
  const tabList = h("div", { class: "tabs", role: "tablist", "aria-label": "Endpoint sections" }, tabButtons);
  tabList.addEventListener("keydown", (ev) => {
    const i = tabButtons.indexOf(document.activeElement);
    if (i < 0) return;
    const j = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: TABS.length - 1 }[ev.key];
    if (j === undefined) return;
    ev.preventDefault();
    const k = (j + TABS.length) % TABS.length;
    tabButtons[k].focus();
    go(TABS[k][0]);
  });
  const panel = h("section", { id: "tab-panel", role: "tabpanel", tabindex: "0" });

  function showError(e) { error.textContent = e.toString(); error.hidden = false; }

  function paintHead() {
    replace(badges, readyBadge(ep.state), updateBadge(ep.state), ep.task ? h("span", { class: "chip" }, ep.task) : null);
    const m = canManage();
    editLink.setAttribute("aria-disabled", String(!m));
    editLink.title = m ? "" : "You need CAN_MANAGE to edit this endpoint";
    if (!m) editLink.removeAttribute("href"); else editLink.href = `/ui/endpoints/${encodeURIComponent(name)}/edit`;
    delBtn.disabled = !m;
    const notes = scalingNotes(ep);
    scaling.hidden = notes.length === 0;
    scaling.textContent = notes.join("; ");
  }

  async function load() {
    clearTimeout(timer);
    try {
      const fresh = await get(epPath(name));
      if (!alive) return;
      ep = fresh;
      error.hidden = true;
      paintHead();
      listeners.forEach((fn) => fn(ep));
      if (!tab) go(params.tab || "overview", true);
      timer = setTimeout(load, busy(ep) ? FAST_MS : SLOW_MS);
    } catch (e) {
      if (!alive) return;
      showError(e);
      if (e.status === 404) { replace(panel); return; }
      timer = setTimeout(load, SLOW_MS);
    }
  }

  const tctx = {
    name,
    get ep() { return ep; },
    canManage,
    sampler,
    navigate: ctx.navigate,
    reload: load,
    onEndpoint(fn) { listeners.add(fn); return () => listeners.delete(fn); },
  };

  async function go(id, initial = false) {
    if (!TABS.some((t) => t[0] === id)) id = "overview";
    if (tab && tab.id === id) return;
    if (!initial) {
      const url = `/ui/endpoints/${encodeURIComponent(name)}${id === "overview" ? "" : `/${id}`}`;
      if (location.pathname !== url) history.pushState(null, "", url);
    }
    if (tab && tab.instance && tab.instance.cleanup) tab.instance.cleanup();
    tabButtons.forEach((b, i) => {
      const on = TABS[i][0] === id;
      b.setAttribute("aria-selected", String(on));
      b.tabIndex = on ? 0 : -1;
    });
    panel.setAttribute("aria-labelledby", `tab-${id}`);
    tab = { id, instance: null };
    const mine = ++tabSeq;
    const mod = await TABS.find((t) => t[0] === id)[2]();
    if (mine !== tabSeq || !alive) return;
    replace(panel);
    tab.instance = mod.mount(panel, tctx) || null;
    ctx.title(`${name} · ${TABS.find((t) => t[0] === id)[1]}`);
  }

  root.append(
    h("nav", { "aria-label": "Breadcrumb", class: "small", style: { marginBottom: ".35rem" } }, h("a", { href: "/ui/endpoints" }, "Serving endpoints"), " / "),
    h("div", { class: "page-head" }, h("h1", {}, name), badges,
      h("div", { class: "actions" }, editLink, delBtn)),
    scaling, error, tabList, panel, dialog);
  load();

  return {
    update(p) { go(p.tab || "overview", true); },
    cleanup() {
      alive = false;
      clearTimeout(timer);
      sampler.stop();
      if (tab && tab.instance && tab.instance.cleanup) tab.instance.cleanup();
    },
  };
}
