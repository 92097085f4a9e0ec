// Admin: users, service principals and groups through the SCIM API. Admins only: anyone else
// gets a page that says so (the API refuses their changes anyway).
import { errorBox, h, replace } from "../dom.js";
import { whoami } from "../whoami.js";

const SECTIONS = [
  ["users", "Users", () => import("./admin_principals.js")],
  ["service-principals", "Service principals", () => import("./admin_principals.js")],
  ["groups", "Groups", () => import("./admin_groups.js")],
];

export function render(root, params, ctx) {
  const [id, label, load] = SECTIONS.find(([k]) => k === params.section) || SECTIONS[0];
  ctx.title(label);
  let alive = true;
  let instance = null;
  const heading = h("h1", {}, label);
  const error = errorBox();
  const body = h("div", {}, h("p", { class: "muted" }, h("span", { class: "spinner" }), " Loading…"));
  const subnav = h("nav", { class: "subnav", "aria-label": "Admin sections" },
    SECTIONS.map(([k, text]) => h("a", { href: `/ui/admin/${k}`, "aria-current": k === id ? "page" : null }, text)));
  root.append(h("div", { class: "page-head" }, heading), subnav, error, body);

  Promise.all([whoami(), load()]).then(([me, mod]) => {
    if (!alive || !me) return;
    if (!me.isAdmin) {
      heading.textContent = "Admins only";
      subnav.hidden = true;
      ctx.title("Admins only");
      replace(body, h("div", { class: "panel", id: "admins-only" },
        h("p", {}, "Users, service principals and groups are managed by workspace admins (members of the ",
          h("code", {}, "admins"), " group). You are signed in as ", h("strong", {}, me.name), ", who is not an admin."),
        h("p", {}, "Ask an admin for access, or ", h("a", { href: "/ui/me" }, "see your account and tokens"), ".")));
      return;
    }
    body.replaceChildren();
    instance = mod.mount(body, { section: id, ctx });
  }).catch((e) => { if (alive) { body.replaceChildren(); error.show(e); } });

  return { cleanup() { alive = false; if (instance && instance.cleanup) instance.cleanup(); } };
}
