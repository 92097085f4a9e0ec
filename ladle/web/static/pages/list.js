// The endpoints list: filter by name, refresh by itself while any update is in progress.
import { get } from "../api.js";
import { h, relTime, fmtTime, replace } from "../dom.js";
import { entityLabel, inProgress, stateCell } from "../states.js";

const FAST_MS = 2000;
const SLOW_MS = 30000;

export function render(root, params, ctx) {
  ctx.title("Serving endpoints");
  let endpoints = null;
  let timer = null;
  let alive = true;
  const filter = h("input", { type: "search", id: "ep-filter", placeholder: "Filter by name", "aria-label": "Filter endpoints by name" });
  const status = h("span", { class: "muted small", role: "status", "aria-live": "polite" });
  const body = h("tbody");
  const error = h("div", { class: "alert alert-error", role: "alert", hidden: true });
  const table = h("table", { class: "fixed", id: "endpoints-table" },
    h("colgroup", {}, h("col", { style: { width: "20%" } }), h("col", { style: { width: "12%" } }),
      h("col", { style: { width: "11%" } }), h("col", { style: { width: "25%" } }),
      h("col", { style: { width: "17%" } }), h("col", { style: { width: "15%" } })),
    h("thead", {}, h("tr", {}, ["Name", "State", "Task", "Served entities", "Creator", "Last updated"].map((t) => h("th", { scope: "col" }, t)))),
    body);

  function rows() {
    const q = filter.value.trim().toLowerCase();
    const shown = (endpoints || []).filter((e) => e.name.toLowerCase().includes(q));
    if (endpoints === null) return [h("tr", {}, h("td", { colspan: 6, class: "empty" }, h("span", { class: "spinner" }), " Loading…"))];
    if (!endpoints.length) {
      return [h("tr", {}, h("td", { colspan: 6, class: "empty" }, "No serving endpoints yet. ",
        h("a", { href: "/ui/create" }, "Create one"), "."))];
    }
    if (!shown.length) return [h("tr", {}, h("td", { colspan: 6, class: "empty" }, `No endpoint name contains “${filter.value}”.`))];
    return shown.map((e) => {
      const ents = (e.config && e.config.served_entities) || [];
      return h("tr", { "data-endpoint": e.name },
        h("td", {}, h("a", { href: `/ui/endpoints/${encodeURIComponent(e.name)}` }, e.name)),
        h("td", {}, stateCell(e.state)),
        h("td", {}, e.task || h("span", { class: "muted" }, "custom model")),
        h("td", {}, ents.length ? h("div", { class: "chips" }, ents.map((x) => h("span", { class: "chip", title: x.name }, entityLabel(x)))) : "—"),
        h("td", {}, e.creator || "—"),
        h("td", { title: fmtTime(e.last_updated_timestamp) }, relTime(e.last_updated_timestamp)));
    });
  }

  async function load() {
    clearTimeout(timer);
    try {
      const data = await get("/api/2.0/serving-endpoints");
      if (!alive) return;
      endpoints = (data.endpoints || []).sort((a, b) => a.name.localeCompare(b.name));
      error.hidden = true;
      replace(body, rows());
      const busy = endpoints.some(inProgress);
      status.textContent = busy ? "Updates in progress; refreshing every 2 s" : `Updated ${new Date().toLocaleTimeString()}`;
      timer = setTimeout(load, busy ? FAST_MS : SLOW_MS);
    } catch (e) {
      if (!alive) return;
      error.textContent = e.toString();
      error.hidden = false;
      timer = setTimeout(load, SLOW_MS);
    }
  }

  filter.addEventListener("input", () => replace(body, rows()));
  root.append(
    h("div", { class: "page-head" }, h("h1", {}, "Serving endpoints"),
      h("div", { class: "actions" }, h("a", { class: "btn btn-primary", href: "/ui/create" }, "Create endpoint"))),
    h("div", { class: "panel" },
      h("div", { class: "row", style: { marginBottom: ".75rem", alignItems: "center" } },
        h("div", { style: { flex: "0 1 320px" } }, filter), status),
      error, h("div", { class: "table-wrap" }, table)));
  replace(body, rows());
  load();
  return { cleanup() { alive = false; clearTimeout(timer); } };
}
