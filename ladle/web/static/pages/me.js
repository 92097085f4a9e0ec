// Me: who the signed-in token belongs to (SCIM Me), the caller's personal access tokens and,
// for a service principal or an admin, OAuth secrets of service principals.
import { errorBox, h } from "../dom.js";
import { KIND_LABEL, whoami } from "../whoami.js";
import * as secrets from "./me_secrets.js";
import * as tokens from "./me_tokens.js";

function identity(me) {
  const groups = me.groups.length ? h("div", { class: "chips" }, me.groups.map((g) => h("span", { class: "chip" }, g))) : "—";
  return h("section", { class: "panel", "aria-labelledby": "who-title" },
    h("h2", { id: "who-title" }, "Who you are"),
    h("dl", { class: "props", id: "me-props" },
      h("dt", {}, me.kind === "service_principal" ? "Application ID" : "User name"), h("dd", { "data-prop": "name" }, me.name),
      h("dt", {}, "Display name"), h("dd", { "data-prop": "display-name" }, me.displayName || "—"),
      h("dt", {}, "Kind"), h("dd", { "data-prop": "kind" }, KIND_LABEL[me.kind] || me.kind),
      h("dt", {}, "Admin"), h("dd", { "data-prop": "admin" }, me.isAdmin ? "Yes: you manage users, service principals, groups and every endpoint" : "No"),
      h("dt", {}, "Groups"), h("dd", { "data-prop": "groups" }, groups),
      h("dt", {}, "ID"), h("dd", { class: "mono", "data-prop": "id" }, me.id || "—")));
}

export function render(root, params, ctx) {
  ctx.title("Me");
  let alive = true;
  const error = errorBox();
  const body = h("div", {}, h("p", { class: "muted" }, h("span", { class: "spinner" }), " Loading…"));
  root.append(h("div", { class: "page-head" }, h("h1", {}, "Me")), error, body);
  whoami().then((me) => {
    if (!alive || !me) return;
    body.replaceChildren(identity(me));
    tokens.mount(body);
    secrets.mount(body, me, new URLSearchParams(location.search).get("sp"));
  }).catch((e) => { if (alive) { body.replaceChildren(); error.show(e); } });
  return { cleanup() { alive = false; } };
}
