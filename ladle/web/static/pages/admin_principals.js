// Admin, users or service principals: list with a filter, create, delete (after a confirmation).
// A service principal's applicationId is its OAuth client ID; its secrets are on the Me page.
import { api, enc, fieldOf, get } from "../api.js";
import { clearErrors, confirmAction, errorBox, field, h, replace, showAt, toast } from "../dom.js";

const SCIM = "/api/2.0/preview/scim/v2";
const KINDS = {
  users: {
    path: `${SCIM}/Users`, noun: "user", key: (p) => p.userName,
    head: ["User name", "Display name", "Groups", "ID", ""],
    cells: (p) => [p.userName, p.displayName || "—"],
  },
  "service-principals": {
    path: `${SCIM}/ServicePrincipals`, noun: "service principal", key: (p) => p.applicationId,
    head: ["Display name", "Application ID", "Groups", "ID", ""],
    cells: (p) => [p.displayName || "—", h("code", { "data-application-id": p.applicationId }, p.applicationId)],
  },
};

export function mount(root, { section }) {
  const kind = KINDS[section];
  let items = null;
  let alive = true;
  const error = errorBox();
  const formError = errorBox();
  const body = h("tbody");
  const filter = h("input", { type: "search", placeholder: "Filter by name", "aria-label": `Filter ${kind.noun}s by name` });
  const name = h("input", { type: "text", name: "name", autocomplete: "off", spellcheck: "false" });
  const display = h("input", { type: "text", name: "displayName", autocomplete: "off" });
  const isUser = section === "users";
  const form = h("form", { class: "row", "aria-label": `Add a ${kind.noun}`, novalidate: true },
    isUser ? field("User name", name, { field: "userName", hint: "Usually an email address; tokens and permissions name the user by it." }) : null,
    field("Display name", display, { field: "displayName", hint: isUser ? "Optional." : "ladle generates the application ID (the OAuth client ID)." }),
    h("div", { class: "field field-button" }, h("button", { type: "submit", class: "btn btn-primary" }, `Add ${kind.noun}`)));

  function rows() {
    const cols = kind.head.length;
    if (items === null) return h("tr", {}, h("td", { colspan: cols, class: "empty" }, h("span", { class: "spinner" }), " Loading…"));
    const q = filter.value.trim().toLowerCase();
    const shown = items.filter((p) => [kind.key(p), p.displayName].some((v) => (v || "").toLowerCase().includes(q)));
    if (!items.length) return h("tr", {}, h("td", { colspan: cols, class: "empty" }, `No ${kind.noun}s yet.`));
    if (!shown.length) return h("tr", {}, h("td", { colspan: cols, class: "empty" }, `No ${kind.noun} matches “${filter.value}”.`));
    return shown.map((p) => {
      const label = kind.key(p);
      return h("tr", { "data-principal": label },
        kind.cells(p).map((c) => h("td", {}, c)),
        h("td", {}, h("div", { class: "chips" }, (p.groups || []).map((g) => h("span", { class: "chip" }, g.display)))),
        h("td", { class: "mono small" }, p.id),
        h("td", {}, h("div", { class: "btn-group" },
          isUser ? null : h("a", { class: "btn btn-small", href: `/ui/me?sp=${enc(p.id)}`, "aria-label": `OAuth secrets of ${p.displayName || label}` }, "OAuth secrets"),
          h("button", { type: "button", class: "btn btn-small btn-danger", "aria-label": `Delete ${label}`, onclick: () => remove(p, label) }, "Delete"))));
    });
  }

  async function load() {
    try {
      const data = await get(kind.path);
      if (!alive) return;
      items = (data.Resources || []).sort((a, b) => (kind.key(a) || "").localeCompare(kind.key(b) || ""));
      error.show(null);
    } catch (e) {
      if (!alive) return;
      items = items || [];
      error.show(e);
    }
    replace(body, rows());
  }

  async function remove(p, label) {
    const ok = await confirmAction(`Delete ${label}?`,
      `The ${kind.noun}, its tokens, its group memberships and its permissions are removed. This cannot be undone.`, `Delete ${kind.noun}`);
    if (!ok) return;
    try { await api("DELETE", `${kind.path}/${enc(p.id)}`); toast(`Deleted ${label}`); } catch (e) { error.show(e); }
    await load();
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    formError.show(null);
    const req = {};
    if (isUser) {
      req.userName = name.value.trim();
      if (!req.userName) { showAt(form, "userName", "Enter a user name."); return; }
    }
    if (display.value.trim()) req.displayName = display.value.trim();
    else if (!isUser) { showAt(form, "displayName", "Enter a display name."); return; }
    try {
      const made = await api("POST", kind.path, { body: req });
      toast(`Added ${kind.key(made)}`);
      name.value = "";
      display.value = "";
      await load();
    } catch (e) {
      if (!showAt(form, fieldOf(e.message), e.toString())) formError.show(e);
    }
  });
  filter.addEventListener("input", () => replace(body, rows()));

  root.append(
    h("section", { class: "panel", "aria-label": `${kind.noun}s` },
      h("div", { class: "row", style: { marginBottom: ".75rem" } }, h("div", { style: { flex: "0 1 320px" } }, filter)),
      error,
      h("div", { class: "table-wrap" }, h("table", { id: "principals" },
        h("thead", {}, h("tr", {}, kind.head.map((t) => h("th", { scope: "col" }, t)))), body))),
    h("section", { class: "panel", "aria-labelledby": "add-title" },
      h("h2", { id: "add-title" }, `Add a ${kind.noun}`), formError, form));
  replace(body, rows());
  load();
  return { cleanup() { alive = false; } };
}
