// AI gateway tab: rate limits, usage tracking, inference table, guardrails and fallbacks,
// saved with PUT /api/2.0/serving-endpoints/{name}/ai-gateway.
import { ApiError, api, epPath, fieldOf } from "../api.js";
import { clearErrors, copyButton, field, h, options, pretty, showAt } from "../dom.js";

const KEYS = [["endpoint", "Whole endpoint"], ["user", "Each user"], ["user_group", "A group"], ["service_principal", "A service principal"]];
const PII = [["", "Off"], ["NONE", "Detect only (NONE)"], ["BLOCK", "Block"], ["MASK", "Mask"]];
const list = (text) => text.split(/[\n,]/).map((x) => x.trim()).filter(Boolean);

export function mount(panel, ctx) {
  const limitsBox = h("div", { id: "rate-limits" });
  const limits = [];
  const usage = h("input", { type: "checkbox", name: "usage_tracking" });
  const itEnabled = h("input", { type: "checkbox", name: "inference_table_enabled" });
  const itCatalog = h("input", { type: "text", name: "catalog_name", spellcheck: "false" });
  const itSchema = h("input", { type: "text", name: "schema_name", spellcheck: "false" });
  const itPrefix = h("input", { type: "text", name: "table_name_prefix", spellcheck: "false" });
  const fallback = h("input", { type: "checkbox", name: "fallback" });
  const guard = {};
  const guardBox = ["input", "output"].map((side) => {
    const g = guard[side] = {
      safety: h("input", { type: "checkbox" }),
      pii: h("select", {}, options(PII, "")),
      keywords: h("textarea", { rows: 2, spellcheck: "false" }),
      topics: h("textarea", { rows: 2, spellcheck: "false" }),
    };
    const p = `guardrails.${side}`;
    return h("fieldset", { "data-field": p }, h("legend", {}, side === "input" ? "Requests (input)" : "Responses (output)"),
      field("Block unsafe content", g.safety, { inline: true, field: `${p}.safety` }),
      field("PII", g.pii, { field: `${p}.pii.behavior` }),
      field("Invalid keywords", g.keywords, { field: `${p}.invalid_keywords`, hint: "Comma or newline separated" }),
      field("Valid topics", g.topics, { field: `${p}.valid_topics`, hint: "Comma or newline separated" }));
  });
  const preview = h("pre", { class: "code", id: "gateway-json" });
  const status = h("span", { role: "status", class: "small", id: "gateway-status" });
  const error = h("div", { class: "alert alert-error", role: "alert", hidden: true, tabindex: "-1" });
  const save = h("button", { type: "submit", class: "btn btn-primary" }, "Save AI gateway");
  const addBtn = h("button", { type: "button", class: "btn", onclick: () => { addLimit({}); refresh(); limits[limits.length - 1].calls.focus(); } }, "+ Add rate limit");

  function addLimit(r) {
    const key = h("select", { name: "key" }, options(KEYS, r.key || "endpoint"));
    const principal = h("input", { type: "text", name: "principal", value: r.principal || "", spellcheck: "false" });
    const calls = h("input", { type: "number", name: "calls", min: 0, value: r.calls ?? "" });
    const tokens = h("input", { type: "number", name: "tokens", min: 0, value: r.tokens ?? "" });
    const row = h("div", { class: "row row-tight entity-card", style: { padding: ".6rem .75rem 0" } });
    const item = { row, key, principal, calls, tokens };
    const remove = h("button", { type: "button", class: "btn btn-small btn-danger", "aria-label": "Remove this rate limit",
      onclick: () => { limits.splice(limits.indexOf(item), 1); row.remove(); reindex(); refresh(); } }, "Remove");
    const paint = () => { principal.disabled = key.value === "endpoint"; };
    key.addEventListener("change", () => { paint(); refresh(); });
    for (const c of [principal, calls, tokens]) c.addEventListener("input", refresh);
    row.append(field("Applies to", key, { field: "key" }), field("Principal", principal, { field: "principal", hint: "User, group or service principal" }),
      field("Calls per minute", calls, { field: "calls" }), field("Tokens per minute", tokens, { field: "tokens" }),
      h("div", { class: "field field-button" }, remove));
    row.prepend(h("div", { class: "field-error", role: "alert", hidden: true, style: { flexBasis: "100%" } }));
    paint();
    limits.push(item);
    limitsBox.append(row);
    reindex();
  }
  function reindex() {
    limits.forEach((l, i) => {
      l.row.dataset.field = `rate_limits.${i}`;
      l.row.querySelectorAll(".field[data-field]").forEach((f) => { f.dataset.field = `rate_limits.${i}.${f.dataset.field.split(".").pop()}`; });
    });
  }

  function body() {
    const out = {};
    out.rate_limits = limits.map((l) => {
      const r = { renewal_period: "minute", key: l.key.value };
      if (l.calls.value !== "") r.calls = Number(l.calls.value);
      if (l.tokens.value !== "") r.tokens = Number(l.tokens.value);
      if (l.key.value !== "endpoint" && l.principal.value.trim()) r.principal = l.principal.value.trim();
      return r;
    });
    out.usage_tracking_config = { enabled: usage.checked };
    const it = { enabled: itEnabled.checked };
    if (itCatalog.value.trim()) it.catalog_name = itCatalog.value.trim();
    if (itSchema.value.trim()) it.schema_name = itSchema.value.trim();
    if (itPrefix.value.trim()) it.table_name_prefix = itPrefix.value.trim();
    if (it.enabled || Object.keys(it).length > 1) out.inference_table_config = it;
    const guardrails = {};
    for (const side of ["input", "output"]) {
      const g = guard[side];
      const p = {};
      if (g.safety.checked) p.safety = true;
      if (g.pii.value) p.pii = { behavior: g.pii.value };
      if (list(g.keywords.value).length) p.invalid_keywords = list(g.keywords.value);
      if (list(g.topics.value).length) p.valid_topics = list(g.topics.value);
      if (Object.keys(p).length) guardrails[side] = p;
    }
    if (Object.keys(guardrails).length) out.guardrails = guardrails;
    out.fallback_config = { enabled: fallback.checked };
    return out;
  }
  function refresh() { preview.textContent = pretty(body()); }

  function fill(gw) {
    gw = gw || {};
    limits.splice(0).forEach((l) => l.row.remove());
    (gw.rate_limits || []).forEach(addLimit);
    usage.checked = Boolean(gw.usage_tracking_config && gw.usage_tracking_config.enabled);
    const it = gw.inference_table_config || {};
    itEnabled.checked = Boolean(it.enabled);
    itCatalog.value = it.catalog_name || "";
    itSchema.value = it.schema_name || "";
    itPrefix.value = it.table_name_prefix || "";
    for (const side of ["input", "output"]) {
      const p = (gw.guardrails && gw.guardrails[side]) || {};
      guard[side].safety.checked = Boolean(p.safety);
      guard[side].pii.value = (p.pii && p.pii.behavior) || "";
      guard[side].keywords.value = (p.invalid_keywords || []).join(", ");
      guard[side].topics.value = (p.valid_topics || []).join(", ");
    }
    fallback.checked = Boolean(gw.fallback_config && gw.fallback_config.enabled);
    fs.disabled = !ctx.canManage();
    readOnly.hidden = ctx.canManage();
    refresh();
  }

  const fs = h("fieldset", { style: { border: "none", padding: 0, margin: 0 } },
    h("div", { class: "panel" }, h("h2", {}, "Rate limits"),
      h("p", { class: "hint" }, "Requests over a limit get 429 REQUEST_LIMIT_EXCEEDED with Retry-After. Limits renew every minute."),
      limitsBox, addBtn),
    h("div", { class: "panel" }, h("h2", {}, "Tracking"),
      field("Usage tracking: record who called, when, and how many tokens", usage, { inline: true, field: "usage_tracking_config" }),
      h("fieldset", { "data-field": "inference_table_config" }, h("legend", {}, "Inference table (request and response payloads)"),
        field("Enabled", itEnabled, { inline: true, field: "inference_table_config.enabled" }),
        h("div", { class: "row" }, field("Catalog", itCatalog, { field: "inference_table_config.catalog_name" }),
          field("Schema", itSchema, { field: "inference_table_config.schema_name" }),
          field("Table name prefix", itPrefix, { field: "inference_table_config.table_name_prefix" })))),
    h("div", { class: "panel" }, h("h2", {}, "Guardrails"), h("div", { class: "grid2", style: { gridTemplateColumns: "1fr 1fr" } }, guardBox)),
    h("div", { class: "panel" }, h("h2", {}, "Fallbacks"),
      field("On errors, retry the other served entities in order", fallback, { inline: true, field: "fallback_config" })));
  const readOnly = h("div", { class: "alert alert-info" }, "You can view these settings; changing them needs CAN_MANAGE.");
  const form = h("form", { novalidate: true, id: "gateway-form", "aria-label": "AI gateway settings" }, readOnly, fs, error,
    h("div", { class: "form-actions" }, save, status));
  form.addEventListener("input", refresh);
  form.addEventListener("change", refresh);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    error.hidden = true;
    status.textContent = "";
    save.disabled = true;
    try {
      const saved = await api("PUT", `${epPath(ctx.name)}/ai-gateway`, { body: body() });
      fill(saved);
      status.textContent = `Saved at ${new Date().toLocaleTimeString()}`;
      ctx.reload();
    } catch (e) {
      error.textContent = e instanceof ApiError ? e.toString() : String(e);
      error.hidden = false;
      const where = e instanceof ApiError ? fieldOf(e.message) : null;
      if (!where || !showAt(form, where, e.toString())) error.focus();
    } finally {
      save.disabled = false;
    }
  });

  panel.append(h("div", { class: "grid2" }, form,
    h("aside", { class: "panel sticky", "aria-label": "Request preview" },
      h("div", { class: "code-head" }, h("h2", { style: { margin: 0 } }, "Request"), h("div", { class: "btn-group" }, copyButton("Copy JSON", () => preview.textContent))),
      h("p", { class: "mono small" }, `PUT ${epPath(ctx.name)}/ai-gateway`), preview)));
  let filled = false;
  if (ctx.ep) { fill(ctx.ep.ai_gateway); filled = true; }
  const off = ctx.onEndpoint((ep) => { if (!filled) { fill(ep.ai_gateway); filled = true; } });
  return { cleanup: off };
}
