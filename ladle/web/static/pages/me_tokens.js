// Me page, personal access tokens: the caller's own tokens (list), a new one (its value shown
// once, with a copy button) and revoke (after a confirmation).
import { api, fieldOf, get } from "../api.js";
import { clearErrors, confirmAction, copyButton, errorBox, field, fmtTime, h, relTime, replace, setFieldError, showAt, toast } from "../dom.js";

const DAY_S = 86400;
const revoke = (id) => api("POST", "/api/2.0/token/delete", { body: { token_id: id } });

export function mount(root) {
  let tokens = null;
  const error = errorBox();
  const body = h("tbody");
  const comment = h("input", { type: "text", name: "comment", autocomplete: "off", spellcheck: "false" });
  const days = h("input", { type: "number", name: "lifetime", min: "1", step: "1", inputmode: "numeric" });
  const lifetimeField = field("Lifetime (days)", days, { field: "lifetime_seconds", hint: "Leave empty for a token that does not expire." });
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Generate token");
  const form = h("form", { class: "row", "aria-label": "Generate a token", novalidate: true },
    field("Comment", comment, { field: "comment", hint: "What the token is for, e.g. “laptop CLI”." }),
    lifetimeField,
    h("div", { class: "field field-button" }, submit));
  const value = h("input", { type: "text", id: "new-token-value", readOnly: true, spellcheck: "false", class: "mono" });
  const created = h("div", { id: "new-token", class: "alert alert-ok", hidden: true },
    h("p", { style: { marginTop: 0 } }, h("strong", {}, "Copy the new token now."),
      " It is shown only this once: ladle keeps only its hash."),
    field("New token", value),
    h("div", { class: "btn-group" }, copyButton("Copy token", () => value.value),
      h("button", { type: "button", class: "btn btn-small", onclick: () => { value.value = ""; created.hidden = true; comment.focus(); } }, "Done")));

  function rows() {
    if (tokens === null) return h("tr", {}, h("td", { colspan: 5, class: "empty" }, h("span", { class: "spinner" }), " Loading…"));
    if (!tokens.length) return h("tr", {}, h("td", { colspan: 5, class: "empty" }, "You have no personal access tokens."));
    return tokens.map((t) => {
      const label = t.comment || t.token_id;
      return h("tr", { "data-token": t.token_id },
        h("td", {}, t.comment || h("span", { class: "muted" }, "(no comment)")),
        h("td", { title: fmtTime(t.creation_time) }, relTime(t.creation_time)),
        h("td", {}, t.expiry_time && t.expiry_time > 0 ? fmtTime(t.expiry_time) : h("span", { class: "muted" }, "never")),
        h("td", { class: "mono small" }, t.token_id),
        h("td", {}, h("button", {
          type: "button", class: "btn btn-small btn-danger", "aria-label": `Revoke ${label}`,
          onclick: () => askRevoke(t, label),
        }, "Revoke")));
    });
  }

  async function load() {
    try {
      const data = await get("/api/2.0/token/list");
      // The caller's own tokens (admins too: everyone's are under /token-management).
      tokens = (data.token_infos || [])
        .sort((a, b) => (b.creation_time || 0) - (a.creation_time || 0));
      error.show(null);
    } catch (e) {
      tokens = tokens || [];
      error.show(e);
    }
    replace(body, rows());
  }

  async function askRevoke(t, label) {
    const ok = await confirmAction(`Revoke ${label}?`, "Anything that uses this token is refused from now on. This cannot be undone.", "Revoke token");
    if (!ok) return;
    try {
      await revoke(t.token_id);
      toast(`Revoked ${label}`);
    } catch (e) { error.show(e); }
    await load();
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    error.show(null);
    const req = { comment: comment.value.trim() };
    if (days.value.trim()) {
      const n = Number(days.value);
      if (!Number.isInteger(n) || n < 1) { setFieldError(lifetimeField, "Enter a whole number of days, 1 or more."); days.focus(); return; }
      req.lifetime_seconds = n * DAY_S;
    }
    submit.disabled = true;
    try {
      const out = await api("POST", "/api/2.0/token/create", { body: req });
      value.value = out.token_value;
      created.hidden = false;
      comment.value = "";
      days.value = "";
      value.focus();
      value.select();
      await load();
    } catch (e) {
      if (!showAt(form, fieldOf(e.message), e.toString())) error.show(e);
    } finally {
      submit.disabled = false;
    }
  });

  root.append(h("section", { class: "panel", "aria-labelledby": "tokens-title" },
    h("h2", { id: "tokens-title" }, "Personal access tokens"),
    h("p", { class: "hint" }, "Use a token as ", h("code", {}, "DATABRICKS_TOKEN"), " with the Databricks SDK, the ladle CLI, MLflow or curl."),
    error, created,
    h("div", { class: "table-wrap" }, h("table", { id: "tokens" },
      h("thead", {}, h("tr", {}, ["Comment", "Created", "Expires", "Token ID", ""].map((t) => h("th", { scope: "col" }, t)))), body)),
    h("h3", { style: { marginTop: "1rem" } }, "Generate a new token"), form));
  replace(body, rows());
  load();
}
