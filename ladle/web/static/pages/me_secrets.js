// Me page, OAuth secrets of service principals (client credentials for OAuth M2M): a service
// principal manages its own, an admin picks any. The section stays hidden unless the server
// answers the secrets API; a new secret is shown once.
import { api, enc, get } from "../api.js";
import { confirmAction, copyButton, errorBox, field, h, options, replace, toast } from "../dom.js";

const SPS = "/api/2.0/preview/scim/v2/ServicePrincipals";
const base = (spId) => `/api/2.0/accounts/servicePrincipals/${enc(spId)}/credentials/secrets`;
const when = (iso) => (iso ? new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : "—");

async function listAll(spId) {
  const out = [];
  let page = "";
  do {
    const data = await get(base(spId) + (page ? `?page_token=${enc(page)}` : ""));
    out.push(...(data.secrets || []));
    page = data.next_page_token || "";
  } while (page);
  return out;
}

// Mounts the section into root when the caller may manage some service principal's secrets.
// `wanted` preselects a service principal by SCIM id (the admin pages link here with ?sp=ID).
export async function mount(root, me, wanted) {
  let sps;
  if (me.kind === "service_principal") sps = [{ id: me.id, applicationId: me.name, displayName: me.displayName }];
  else if (me.isAdmin) {
    try { sps = (await get(SPS)).Resources || []; } catch { return; }
  } else return;
  if (!sps.length) return;
  const first = sps.find((s) => s.id === wanted) || sps[0];
  try { await listAll(first.id); } catch { return; } // the server has no secrets API (or refuses it)

  const error = errorBox();
  const body = h("tbody");
  const pick = h("select", { name: "service_principal" },
    options(sps.map((s) => [s.id, `${s.displayName || s.applicationId} (${s.applicationId})`]), first.id));
  const appId = h("code", { id: "secret-client-id" });
  const value = h("input", { type: "text", id: "new-secret-value", readOnly: true, spellcheck: "false", class: "mono" });
  const created = h("div", { id: "new-secret", class: "alert alert-ok", hidden: true },
    h("p", { style: { marginTop: 0 } }, h("strong", {}, "Copy the new secret now."),
      " It is shown only this once: ladle keeps only its hash."),
    field("New client secret", value),
    h("div", { class: "btn-group" }, copyButton("Copy secret", () => value.value),
      h("button", { type: "button", class: "btn btn-small", onclick: () => { value.value = ""; created.hidden = true; } }, "Done")));
  const make = h("button", { type: "button", class: "btn btn-primary" }, "Create secret");
  const current = () => sps.find((s) => s.id === pick.value) || first;

  async function load() {
    const sp = current();
    appId.textContent = sp.applicationId;
    try {
      const secrets = await listAll(sp.id);
      error.show(null);
      replace(body, secrets.length ? secrets.map((s) => h("tr", { "data-secret": s.id },
        h("td", { class: "mono small" }, s.id),
        h("td", {}, s.status || "—"),
        h("td", {}, when(s.create_time)),
        h("td", {}, when(s.expire_time)),
        h("td", {}, h("button", {
          type: "button", class: "btn btn-small btn-danger", "aria-label": `Delete secret ${s.id}`,
          onclick: () => remove(sp, s),
        }, "Delete")))) : h("tr", {}, h("td", { colspan: 5, class: "empty" }, "No OAuth secrets for this service principal.")));
    } catch (e) { error.show(e); }
  }

  async function remove(sp, s) {
    const ok = await confirmAction("Delete this OAuth secret?",
      `Clients that sign in as ${sp.applicationId} with it are refused from now on, and the tokens they got from it stop working.`, "Delete secret");
    if (!ok) return;
    try { await api("DELETE", `${base(sp.id)}/${enc(s.id)}`); toast("Secret deleted"); } catch (e) { error.show(e); }
    await load();
  }

  make.addEventListener("click", async () => {
    make.disabled = true;
    try {
      const out = await api("POST", base(current().id), { body: {} });
      value.value = out.secret;
      created.hidden = false;
      value.focus();
      value.select();
      await load();
    } catch (e) { error.show(e); } finally { make.disabled = false; }
  });
  pick.addEventListener("change", () => { created.hidden = true; value.value = ""; load(); });

  root.append(h("section", { class: "panel", id: "oauth-secrets", "aria-labelledby": "secrets-title" },
    h("h2", { id: "secrets-title" }, "OAuth secrets"),
    h("p", { class: "hint" }, "A service principal signs in with OAuth client credentials: its application ID is the client ID, a secret below the client secret ",
      "(", h("code", {}, "DATABRICKS_CLIENT_ID"), " and ", h("code", {}, "DATABRICKS_CLIENT_SECRET"), " for the Databricks SDK)."),
    me.kind === "service_principal" ? null : field("Service principal", pick),
    h("p", {}, "Client ID: ", appId),
    error, created,
    h("div", { class: "table-wrap" }, h("table", { id: "secrets" },
      h("thead", {}, h("tr", {}, ["Secret ID", "Status", "Created", "Expires", ""].map((t) => h("th", { scope: "col" }, t)))), body)),
    h("div", { class: "form-actions" }, make)));
  load();
}
