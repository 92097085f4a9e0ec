// "Used by apps" on an endpoint's overview: the apps (those the signed-in user can see) whose
// resources name this endpoint, with the permission each one's service principal holds on it.
import { get } from "../api.js";
import { h, replace } from "../dom.js";
import { appBadge, endpointsOf } from "../app_states.js";

export function usedByApps(endpoint) {
  const body = h("div", {}, h("p", { class: "muted" }, h("span", { class: "spinner" }), " Loading…"));
  const panel = h("div", { class: "panel", id: "used-by-apps" }, h("h2", {}, "Used by apps"), body);
  get("/api/2.0/apps").then((data) => {
    const users = (data.apps || []).flatMap((a) => endpointsOf(a).filter((r) => r.serving_endpoint.name === endpoint)
      .map((r) => ({ app: a, key: r.name, permission: r.serving_endpoint.permission })))
      .sort((x, y) => x.app.name.localeCompare(y.app.name));
    if (!users.length) { replace(body, h("p", { class: "muted" }, "No app you can see uses this endpoint.")); return; }
    replace(body, h("ul", { class: "plain" }, users.map(({ app, key, permission }) => h("li", { "data-app": app.name },
      h("a", { href: `/ui/apps/${encodeURIComponent(app.name)}` }, app.name), " ", appBadge(app),
      h("span", { class: "small muted" }, ` ${permission} as resource `, h("code", {}, key))))));
  }).catch((e) => replace(body, h("p", { class: "alert alert-error", role: "alert" }, e.toString())));
  return panel;
}
