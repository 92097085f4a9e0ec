// Admin, groups: list with a filter, create, delete (after a confirmation), and membership
// added and removed with SCIM PATCH. The built-in groups (users, admins) are read-only.
import { api, enc, fieldOf, get } from "../api.js";
import { clearErrors, confirmAction, errorBox, field, h, options, replace, showAt, toast } from "../dom.js";

const SCIM = "/api/2.0/preview/scim/v2";
const PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const BUILTIN = new Set(["users", "admins"]);

const patch = (g, op) => api("PATCH", `${SCIM}/Groups/${enc(g.id)}`, { body: { schemas: [PATCH_OP], Operations: [op] } });

export function mount(root) {
  let groups = null;
  let principals = [];
  let alive = true;
  const error = errorBox();
  const formError = errorBox();
  const body = h("tbody");
  const filter = h("input", { type: "search", placeholder: "Filter by name", "aria-label": "Filter groups by name" });
  const name = h("input", { type: "text", name: "displayName", autocomplete: "off", spellcheck: "false" });
  const form = h("form", { class: "row", "aria-label": "Create a group", novalidate: true },
    field("Group name", name, { field: "displayName", hint: "Letters, digits, spaces or ._@+-; grant it permissions on endpoints, models and secret scopes." }),
    h("div", { class: "field field-button" }, h("button", { type: "submit", class: "btn btn-primary" }, "Create group")));

  function memberChip(g, m) {
    const fixed = BUILTIN.has(g.displayName);
    return h("span", { class: "chip", "data-member": m.display },
      m.display,
      fixed ? null : h("button", {
        type: "button", class: "chip-x", "aria-label": `Remove ${m.display} from ${g.displayName}`,
        onclick: () => change(g, { op: "remove", path: `members[value eq "${m.value}"]` }, `Removed ${m.display} from ${g.displayName}`),
      }, "×"));
  }

  function adder(g) {
    const have = new Set((g.members || []).map((m) => m.value));
    const choices = principals.filter((p) => !have.has(p.id));
    if (!choices.length) return h("span", { class: "muted small" }, "Everyone is a member.");
    const pick = h("select", { "aria-label": `Member to add to ${g.displayName}` }, options(choices.map((p) => [p.id, p.label])));
    return h("form", { class: "inline-form", onsubmit: (ev) => {
      ev.preventDefault();
      const p = choices.find((c) => c.id === pick.value);
      change(g, { op: "add", value: { members: [{ value: p.id }] } }, `Added ${p.name} to ${g.displayName}`);
    } }, pick, h("button", { type: "submit", class: "btn btn-small", "aria-label": `Add to ${g.displayName}` }, "Add"));
  }

  function rows() {
    if (groups === null) return h("tr", {}, h("td", { colspan: 4, class: "empty" }, h("span", { class: "spinner" }), " Loading…"));
    const q = filter.value.trim().toLowerCase();
    const shown = groups.filter((g) => g.displayName.toLowerCase().includes(q));
    if (!shown.length) return h("tr", {}, h("td", { colspan: 4, class: "empty" }, `No group name contains “${filter.value}”.`));
    return shown.map((g) => {
      const fixed = BUILTIN.has(g.displayName);
      const members = g.members || [];
      return h("tr", { "data-group": g.displayName },
        h("td", {}, g.displayName, fixed ? h("div", { class: "muted small" }, "built-in") : null),
        h("td", {}, members.length ? h("div", { class: "chips" }, members.map((m) => memberChip(g, m))) : h("span", { class: "muted" }, "no members")),
        h("td", {}, fixed ? h("span", { class: "muted small" }, "Managed by ladle") : adder(g)),
        h("td", {}, fixed ? null : h("button", {
          type: "button", class: "btn btn-small btn-danger", "aria-label": `Delete group ${g.displayName}`, onclick: () => remove(g),
        }, "Delete")));
    });
  }

  async function load() {
    try {
      const [gs, users, sps] = await Promise.all([get(`${SCIM}/Groups`), get(`${SCIM}/Users`), get(`${SCIM}/ServicePrincipals`)]);
      if (!alive) return;
      groups = (gs.Resources || []).sort((a, b) => a.displayName.localeCompare(b.displayName));
      principals = [
        ...(users.Resources || []).map((u) => ({ id: u.id, name: u.userName, label: `${u.userName} (user)` })),
        ...(sps.Resources || []).map((s) => ({ id: s.id, name: s.displayName || s.applicationId, label: `${s.displayName || s.applicationId} (service principal ${s.applicationId})` })),
      ];
      error.show(null);
    } catch (e) {
      if (!alive) return;
      groups = groups || [];
      error.show(e);
    }
    replace(body, rows());
  }

  async function change(g, op, done) {
    try { await patch(g, op); toast(done); } catch (e) { error.show(e); }
    await load();
  }

  async function remove(g) {
    const ok = await confirmAction(`Delete group ${g.displayName}?`,
      "Its members stay; the permissions granted to the group are no longer theirs through it.", "Delete group");
    if (!ok) return;
    try { await api("DELETE", `${SCIM}/Groups/${enc(g.id)}`); toast(`Deleted group ${g.displayName}`); } catch (e) { error.show(e); }
    await load();
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    formError.show(null);
    const displayName = name.value.trim();
    if (!displayName) { showAt(form, "displayName", "Enter a group name."); return; }
    try {
      await api("POST", `${SCIM}/Groups`, { body: { displayName } });
      toast(`Created group ${displayName}`);
      name.value = "";
      await load();
    } catch (e) {
      if (!showAt(form, fieldOf(e.message), e.toString())) formError.show(e);
    }
  });
  filter.addEventListener("input", () => replace(body, rows()));

  root.append(
    h("section", { class: "panel", "aria-label": "Groups" },
      h("div", { class: "row", style: { marginBottom: ".75rem" } }, h("div", { style: { flex: "0 1 320px" } }, filter)),
      error,
      h("div", { class: "table-wrap" }, h("table", { id: "groups" },
        h("thead", {}, h("tr", {}, ["Group", "Members", "Add a member", ""].map((t) => h("th", { scope: "col" }, t)))), body))),
    h("section", { class: "panel", "aria-labelledby": "add-group-title" },
      h("h2", { id: "add-group-title" }, "Create a group"), formError, form));
  replace(body, rows());
  load();
  return { cleanup() { alive = false; } };
}
