// The endpoints list: filter by name, refresh by itself while any update is in progress.
import { h, relTime, fmtTime, replace } from "../dom.js";
import { entityLabel, inProgress, stateCell } from "../states.js";
import { pollList } from "../poll.js";

export function render(root, params, ctx) {
  ctx.title("Serving endpoints");
  let endpoints = null;
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

  filter.addEventListener("input", () => replace(body, rows()));
  root.append(
    h("div", { class: "page-head" }, h("h1", {}, "Serving endpoints"),
      h("div", { class: "actions" }, h("a", { class: "btn btn-primary", href: "/ui/create" }, "Create endpoint"))),
    h("div", { class: "panel" },
      h("div", { class: "row", style: { marginBottom: ".75rem", alignItems: "center" } },
        h("div", { style: { flex: "0 1 320px" } }, filter), status),
      error, h("div", { class: "table-wrap" }, table)));
  replace(body, rows());
  const poll = pollList("/api/2.0/serving-endpoints", {
    status, error, busyText: "Updates in progress; refreshing every 2 s",
    show(data) {
      endpoints = (data.endpoints || []).sort((a, b) => a.name.localeCompare(b.name));
      replace(body, rows());
      return endpoints.some(inProgress);
    },
  });
  return { cleanup() { poll.stop(); } };
}
