// Permissions tab: who has CAN_VIEW / CAN_QUERY / CAN_MANAGE; managers edit the direct
// grants and save them with PUT /api/2.0/permissions/serving-endpoints/{id}.
import { api, enc, get } from "../api.js";
import { field, h, options, replace } from "../dom.js";

const TYPES = [["user_name", "User"], ["group_name", "Group"], ["service_principal_name", "Service principal"]];
const LEVELS = ["CAN_VIEW", "CAN_QUERY", "CAN_MANAGE"];
const typeOf = (e) => TYPES.find(([k]) => e[k]) || TYPES[0];

export function mount(panel, ctx) {
  let direct = [];
  let inherited = [];
  let id = null;
  let dirty = false;
  const body = h("tbody");
  const error = h("div", { class: "alert alert-error", role: "alert", hidden: true });
  const status = h("span", { role: "status", class: "small" });
  const levelsHint = h("ul", { class: "hint" });
  const save = h("button", { type: "button", class: "btn btn-primary" }, "Save permissions");
  const ptype = h("select", { name: "principal_type" }, options(TYPES, "user_name"));
  const pname = h("input", { type: "text", name: "principal", spellcheck: "false", autocomplete: "off" });
  const plevel = h("select", { name: "level" }, options(LEVELS, "CAN_QUERY"));
  const addForm = h("form", { class: "row", "aria-label": "Grant a permission" },
    field("Type", ptype), field("Name", pname, { field: "access_control_list" }), field("Permission", plevel),
    h("div", { class: "field field-button" }, h("button", { type: "submit", class: "btn" }, "Add")));

  const markDirty = () => { dirty = true; status.textContent = "Unsaved changes"; };

  function paint() {
    const m = ctx.canManage();
    const rows = direct.map((e, i) => {
      const [k, label] = typeOf(e);
      const sel = h("select", { "aria-label": `Permission for ${e[k]}`, disabled: !m, onchange: () => { e.permission_level = sel.value; markDirty(); } }, options(LEVELS, e.permission_level));
      return h("tr", {}, h("td", {}, e[k]), h("td", {}, label), h("td", {}, sel), h("td", { class: "muted" }, "direct"),
        h("td", {}, m ? h("button", { type: "button", class: "btn btn-small btn-danger", "aria-label": `Remove ${e[k]}`, onclick: () => { direct.splice(i, 1); markDirty(); paint(); } }, "Remove") : null));
    });
    const inh = inherited.map((e) => {
      const [k, label] = typeOf(e);
      const p = e.all_permissions[0];
      return h("tr", {}, h("td", {}, e[k]), h("td", {}, label), h("td", {}, p.permission_level),
        h("td", { class: "muted" }, `inherited from ${(p.inherited_from_object || []).join(", ") || "the workspace"}`), h("td", {}));
    });
    replace(body, rows, inh);
    addForm.hidden = !m;
    save.hidden = !m;
  }

  async function load() {
    const ep = ctx.ep;
    if (!ep || id) return;
    id = ep.id;
    try {
      const [acl, levels] = await Promise.all([
        get(`/api/2.0/permissions/serving-endpoints/${enc(id)}`),
        get(`/api/2.0/permissions/serving-endpoints/${enc(id)}/permissionLevels`).catch(() => ({ permission_levels: [] })),
      ]);
      direct = [];
      inherited = [];
      for (const e of acl.access_control_list || []) {
        for (const p of e.all_permissions || []) {
          const [k] = typeOf(e);
          if (p.inherited) inherited.push({ [k]: e[k], all_permissions: [p] });
          else direct.push({ [k]: e[k], permission_level: p.permission_level });
        }
      }
      replace(levelsHint, (levels.permission_levels || []).map((l) => h("li", {}, h("b", {}, l.permission_level), `: ${l.description || ""}`)));
      error.hidden = true;
      paint();
    } catch (e) {
      error.textContent = e.toString();
      error.hidden = false;
    }
  }

  addForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const n = pname.value.trim();
    if (!n) { pname.focus(); return; }
    const existing = direct.find((e) => e[ptype.value] === n);
    if (existing) existing.permission_level = plevel.value; else direct.push({ [ptype.value]: n, permission_level: plevel.value });
    pname.value = "";
    markDirty();
    paint();
    pname.focus();
  });
  save.addEventListener("click", async () => {
    save.disabled = true;
    error.hidden = true;
    try {
      await api("PUT", `/api/2.0/permissions/serving-endpoints/${enc(id)}`, { body: { access_control_list: direct } });
      id = null;
      dirty = false;
      await load();
      status.textContent = `Saved at ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      error.textContent = e.toString();
      error.hidden = false;
    } finally {
      save.disabled = false;
    }
  });

  panel.append(h("div", { class: "panel" }, h("h2", {}, "Permissions"), levelsHint, error,
    h("div", { class: "table-wrap" }, h("table", { id: "permissions" },
      h("thead", {}, h("tr", {}, ["Principal", "Type", "Permission", "Source", ""].map((t) => h("th", { scope: "col" }, t)))), body)),
    h("div", { style: { marginTop: "1rem" } }, addForm),
    h("div", { class: "form-actions" }, save, status)));
  load();
  const off = ctx.onEndpoint(() => { if (!dirty) load(); });
  return { cleanup: off };
}
