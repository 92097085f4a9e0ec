// The apps list: status, URL and resources of each app the signed-in user can see; refreshes
// by itself while an app deploys, starts or stops.
import { h, relTime, fmtTime, replace } from "../dom.js";
import { appBadge, appBusy, computeBadge } from "../app_states.js";
import { pollList } from "../poll.js";

const COLS = ["Name", "Status", "URL", "Resources", "Creator", "Last updated"];

// One resource as a chip: a serving endpoint links to its page.
export function resourceChip(r) {
  if (r.serving_endpoint) {
    const ep = r.serving_endpoint;
    return h("span", { class: "chip", title: `Resource ${r.name}: serving endpoint ${ep.name}, ${ep.permission}` },
      h("a", { href: `/ui/endpoints/${encodeURIComponent(ep.name)}` }, ep.name), ` · ${ep.permission}`);
  }
  if (r.secret) return h("span", { class: "chip", title: `Resource ${r.name}: secret` }, `secret ${r.secret.scope}/${r.secret.key} · ${r.secret.permission}`);
  return h("span", { class: "chip" }, r.name);
}

const ms = (iso) => (iso ? Date.parse(iso) : 0);

export function render(root, params, ctx) {
  ctx.title("Apps");
  let apps = null;
  const status = h("span", { class: "muted small", role: "status", "aria-live": "polite" });
  const body = h("tbody");
  const error = h("div", { class: "alert alert-error", role: "alert", hidden: true });
  const table = h("table", { class: "fixed", id: "apps-table" },
    h("colgroup", {}, [16, 20, 22, 20, 12, 10].map((w) => h("col", { style: { width: `${w}%` } }))),
    h("thead", {}, h("tr", {}, COLS.map((t) => h("th", { scope: "col" }, t)))),
    body);

  function rows() {
    const empty = (...c) => [h("tr", {}, h("td", { colspan: COLS.length, class: "empty" }, ...c))];
    if (apps === null) return empty(h("span", { class: "spinner" }), " Loading…");
    if (!apps.length) {
      return empty("No apps yet. Create one with ", h("code", {}, "ladle apps create"), " or ",
        h("code", {}, "ladle apps init"), " and deploy it with ", h("code", {}, "ladle apps deploy"), ".");
    }
    return apps.map((a) => h("tr", { "data-app": a.name },
      h("td", {}, h("a", { href: `/ui/apps/${encodeURIComponent(a.name)}` }, a.name),
        a.description ? h("div", { class: "small muted" }, a.description) : null),
      h("td", {}, h("div", { class: "state-cell" }, appBadge(a), computeBadge(a))),
      h("td", { class: "small" }, h("a", { href: a.url, target: "_blank", rel: "noopener" }, a.url)),
      h("td", {}, (a.resources || []).length ? h("div", { class: "chips" }, a.resources.map(resourceChip)) : "—"),
      h("td", {}, a.creator || "—"),
      h("td", { title: fmtTime(ms(a.update_time)) }, relTime(ms(a.update_time)))));
  }

  root.append(
    h("div", { class: "page-head" }, h("h1", {}, "Apps")),
    h("div", { class: "panel" },
      h("p", { class: "muted small" }, "Apps run beside the serving endpoints, each as its own service principal, at ",
        h("code", {}, `${location.origin}/apps/<name>/`), ". ", status),
      error, h("div", { class: "table-wrap" }, table)));
  replace(body, rows());
  const poll = pollList("/api/2.0/apps", {
    status, error, busyText: "Changes in progress; refreshing every 2 s",
    show(data) {
      apps = (data.apps || []).sort((a, b) => a.name.localeCompare(b.name));
      replace(body, rows());
      return apps.some(appBusy);
    },
  });
  return { cleanup() { poll.stop(); } };
}
