// One served entity in the create/edit form: a registered model (dropdowns filled from the
// MLflow registry through ladle's proxy) or an external model with provider fields.
import { enc, get } from "./api.js";
import { field, h, options, replace, uid } from "./dom.js";
import { PROVIDERS, SECRET_HINT, TASKS } from "./providers.js";

const SIZES = ["Small", "Medium", "Large"];
const TYPES = ["CPU", "CPU_MEDIUM", "CPU_LARGE", "GPU_SMALL", "GPU_MEDIUM", "GPU_LARGE", "GPU_XLARGE", "GPU_XLARGE_8", "MULTIGPU_MEDIUM"];

async function pages(path, key, max = 5) {
  const out = [];
  let token = "";
  for (let i = 0; i < max; i += 1) {
    const sep = path.includes("?") ? "&" : "?";
    const data = await get(path + (token ? `${sep}page_token=${enc(token)}` : ""));
    out.push(...(data[key] || []));
    token = data.next_page_token;
    if (!token) break;
  }
  return out;
}

// The registry as the form sees it: cached for the life of one form.
export function makeRegistry() {
  let models = null;
  const versions = new Map();
  return {
    models() {
      models = models || pages("/api/2.0/mlflow/registered-models/search?max_results=1000", "registered_models")
        .then((ms) => ms.map((m) => m.name).sort());
      models.catch(() => { models = null; });
      return models;
    },
    versions(name) {
      if (!versions.has(name)) {
        const filter = `name='${name.replace(/'/g, "\\'")}'`;
        const p = pages(`/api/2.0/mlflow/model-versions/search?filter=${enc(filter)}`, "model_versions")
          .then((vs) => vs.sort((a, b) => Number(b.version) - Number(a.version)));
        p.catch(() => versions.delete(name));
        versions.set(name, p);
      }
      return versions.get(name);
    },
  };
}

export function defaultName(e) {
  if (e.external_model) return (e.external_model.name || "").replace(/[.:]/g, "-");
  const base = (e.entity_name || "").split(".").pop();
  return e.entity_version ? `${base}-${e.entity_version}` : base;
}

function rel(wrap, name) { wrap.dataset.rel = name; return wrap; }

function secretInput(label, name, value, onChange) {
  const mode = h("select", { "aria-label": `${label}: kind of value` },
    options([["ref", "Secret reference"], ["plain", "Plaintext"]], value && value.plain ? "plain" : "ref"));
  const input = h("input", { type: "text", value: (value && value.value) || "", placeholder: "{{secrets/scope/key}}", autocomplete: "off", spellcheck: "false" });
  const sync = () => {
    input.type = mode.value === "plain" ? "password" : "text";
    input.placeholder = mode.value === "plain" ? "value" : "{{secrets/scope/key}}";
    onChange();
  };
  mode.addEventListener("change", sync);
  input.addEventListener("input", onChange);
  const wrap = field(label, input, { hint: SECRET_HINT });
  input.before(h("div", { class: "row", style: { gap: ".4rem", flexWrap: "nowrap" } }, h("div", { style: { flex: "0 0 11rem" } }, mode)));
  wrap.querySelector(".row").append(input);
  sync();
  return { wrap: rel(wrap, name), read: (obj) => { if (input.value.trim()) obj[mode.value === "plain" ? `${name}_plaintext` : name] = input.value.trim(); } };
}

function providerFields(provider, cfg, onChange) {
  const spec = PROVIDERS[provider];
  const prefix = `external_model.${spec.key}`;
  const readers = [];
  const els = [];
  for (const f of spec.fields) {
    if (f.secret) {
      const have = cfg[f.name] ? { value: cfg[f.name] } : null;
      const si = secretInput(f.label + (f.optional ? " (optional)" : ""), f.name, have, onChange);
      rel(si.wrap, `${prefix}.${f.name}`);
      readers.push(si.read);
      els.push(si.wrap);
      continue;
    }
    const control = f.choices
      ? h("select", { onchange: onChange }, options(f.choices.map((c) => [c, c || "(default)"]), cfg[f.name] || ""))
      : h("input", { type: "text", value: cfg[f.name] || "", oninput: onChange, spellcheck: "false" });
    els.push(rel(field(f.label + (f.required ? "" : " (optional)"), control, { hint: f.hint }), `${prefix}.${f.name}`));
    readers.push((obj) => { if (control.value.trim()) obj[f.name] = control.value.trim(); });
  }
  if (spec.auth) {
    const auth = cfg.bearer_token_auth ? "bearer" : "api_key";
    const kind = h("select", { onchange: () => { paint(); onChange(); } }, options([["api_key", "API key header"], ["bearer", "Bearer token"]], auth));
    const keyName = h("input", { type: "text", value: (cfg.api_key_auth && cfg.api_key_auth.key) || "", oninput: onChange, placeholder: "X-API-Key" });
    const keyWrap = rel(field("Header name", keyName), `${prefix}.api_key_auth.key`);
    const keyVal = secretInput("Header value", "value", cfg.api_key_auth ? { value: cfg.api_key_auth.value } : null, onChange);
    const bearer = secretInput("Bearer token", "token", cfg.bearer_token_auth ? { value: cfg.bearer_token_auth.token } : null, onChange);
    rel(keyVal.wrap, `${prefix}.api_key_auth.value`);
    rel(bearer.wrap, `${prefix}.bearer_token_auth.token`);
    const paint = () => {
      const b = kind.value === "bearer";
      keyWrap.hidden = b; keyVal.wrap.hidden = b; bearer.wrap.hidden = !b;
    };
    paint();
    els.push(field("Authentication", kind), keyWrap, keyVal.wrap, bearer.wrap);
    readers.push((obj) => {
      if (kind.value === "bearer") { const a = {}; bearer.read(a); obj.bearer_token_auth = a; }
      else { const a = { key: keyName.value.trim() }; keyVal.read(a); obj.api_key_auth = a; }
    });
  }
  return { els, read() { const obj = {}; readers.forEach((r) => r(obj)); return obj; } };
}

export function entityCard(initial, registry, onChange, onRemove) {
  const ext = initial.external_model || null;
  const kindName = uid("kind");
  const title = h("h3", {});
  const err = h("div", { class: "field-error", role: "alert", hidden: true });
  const removeBtn = h("button", { type: "button", class: "btn btn-small btn-danger", onclick: () => onRemove(card) }, "Remove");
  const radio = (value, label) => h("label", {}, h("input", { type: "radio", name: kindName, value, checked: (value === "external") === Boolean(ext) }), label);
  const kind = h("div", { class: "segmented", role: "radiogroup", "aria-label": "Kind of served entity" }, radio("model", "Registered model"), radio("external", "External model"));

  // Registered model
  const model = h("select", { name: "entity_name" }, h("option", { value: initial.entity_name || "" }, initial.entity_name || "Loading models…"));
  const version = h("select", { name: "entity_version" }, h("option", { value: initial.entity_version || "" }, initial.entity_version || "Choose a model first"));
  const name = h("input", { type: "text", name: "served_entity_name", value: initial.name || "", spellcheck: "false" });
  const size = h("select", { name: "workload_size" }, options(SIZES, initial.workload_size || "Small"));
  const wtype = h("select", { name: "workload_type" }, options([["", "CPU (default)"], ...TYPES.slice(1).map((t) => [t, t])], initial.workload_type && initial.workload_type !== "CPU" ? initial.workload_type : ""));
  const s2z = h("input", { type: "checkbox", name: "scale_to_zero_enabled", checked: Boolean(initial.scale_to_zero_enabled) });
  const envText = Object.entries(initial.environment_vars || {}).map(([k, v]) => `${k}=${v}`).join("\n");
  const env = h("textarea", { name: "environment_vars", rows: 2, spellcheck: "false", placeholder: "KEY=value" }, envText);
  const registryNote = h("div", { class: "hint", role: "status" });
  const modelPart = h("div", {},
    h("div", { class: "row" },
      rel(field("Registered model", model, { hint: registryNote }), "entity_name"),
      rel(field("Version", version), "entity_version")),
    h("div", { class: "row" },
      rel(field("Workload size", size, { hint: "Small: 4 concurrent requests, Medium: 8–16, Large: 16–64" }), "workload_size"),
      rel(field("Compute type", wtype), "workload_type")),
    rel(field("Scale to zero when idle", s2z, { inline: true }), "scale_to_zero_enabled"),
    rel(field("Environment variables (optional)", env, { hint: "One KEY=value per line; values may be secret references {{secrets/scope/key}}" }), "environment_vars"));

  // External model
  const provider = h("select", { name: "provider" }, options(Object.entries(PROVIDERS).map(([k, v]) => [k, v.label]), ext ? ext.provider : "openai"));
  const extName = h("input", { type: "text", name: "external_name", value: ext ? ext.name : "", placeholder: "gpt-4o-mini", spellcheck: "false" });
  const task = h("select", { name: "task" }, options(TASKS, ext ? ext.task : "llm/v1/chat"));
  const providerBox = h("div", {});
  let provFields = null;
  const paintProvider = () => {
    const cfg = ext && ext.provider === provider.value ? ext[PROVIDERS[provider.value].key] || {} : {};
    provFields = providerFields(provider.value, cfg, changed);
    replace(providerBox, provFields.els);
    if (card) card.setIndex(index, count);
  };
  let index = 0;
  let count = 1;
  const extPart = h("div", {},
    h("div", { class: "row" },
      rel(field("Provider", provider), "external_model.provider"),
      rel(field("Model name at the provider", extName), "external_model.name"),
      rel(field("Task", task), "external_model.task")),
    providerBox);

  const nameWrap = rel(field("Served entity name (optional)", name, { hint: "Defaults to the model's last name part and version, e.g. iris-1" }), "name");
  const el = h("div", { class: "entity-card" }, err,
    h("div", { class: "entity-card-head" }, title, kind, removeBtn), modelPart, extPart, nameWrap);

  function isExternal() { return el.querySelector(`input[name="${kindName}"]:checked`).value === "external"; }
  function changed() { name.placeholder = defaultName(card.toJSON()) || ""; onChange(); }

  async function fillModels() {
    try {
      const names = await registry.models();
      const want = model.value || initial.entity_name || "";
      const all = want && !names.includes(want) ? [want, ...names] : names;
      replace(model, h("option", { value: "" }, names.length ? "Choose a model" : "No registered models"), options(all, want));
      registryNote.textContent = names.length ? `${names.length} model${names.length === 1 ? "" : "s"} in the registry` : "Register a model with MLflow first (mlflow.<flavor>.log_model(..., registered_model_name=...)).";
      await fillVersions();
    } catch (e) {
      replace(model, h("option", { value: initial.entity_name || "" }, initial.entity_name || "Registry unavailable"));
      registryNote.textContent = `Could not read the registry: ${e}`;
    }
  }
  async function fillVersions() {
    const m = model.value;
    if (!m) { replace(version, h("option", { value: "" }, "Choose a model first")); changed(); return; }
    replace(version, h("option", { value: "" }, "Loading versions…"));
    try {
      const vs = await registry.versions(m);
      if (model.value !== m) return;
      const want = m === initial.entity_name && initial.entity_version ? String(initial.entity_version) : (vs[0] && vs[0].version);
      replace(version, vs.length ? options(vs.map((v) => [v.version, `${v.version}${v.status && v.status !== "READY" ? ` (${v.status})` : ""}${v.aliases && v.aliases.length ? ` @${v.aliases.join(", @")}` : ""}`]), want) : h("option", { value: "" }, "No versions"));
    } catch (e) {
      replace(version, h("option", { value: "" }, `Could not load versions: ${e}`));
    }
    changed();
  }

  const paintKind = () => { const x = isExternal(); modelPart.hidden = x; extPart.hidden = !x; changed(); };
  kind.addEventListener("change", paintKind);
  model.addEventListener("change", fillVersions);
  provider.addEventListener("change", () => { paintProvider(); changed(); });
  for (const c of [version, name, size, wtype, s2z, env, extName, task]) c.addEventListener(c.tagName === "SELECT" || c.type === "checkbox" ? "change" : "input", changed);

  const card = {
    el,
    setIndex(i, n) {
      index = i;
      count = n;
      title.textContent = `Served entity ${i + 1}`;
      removeBtn.hidden = count < 2;
      el.dataset.field = `served_entities.${i}`;
      el.querySelectorAll("[data-rel]").forEach((w) => { w.dataset.field = `served_entities.${i}.${w.dataset.rel}`; });
    },
    toJSON() {
      const out = {};
      if (name.value.trim()) out.name = name.value.trim();
      if (isExternal()) {
        out.external_model = { provider: provider.value, name: extName.value.trim(), task: task.value };
        out.external_model[PROVIDERS[provider.value].key] = provFields ? provFields.read() : {};
        return out;
      }
      out.entity_name = model.value;
      out.entity_version = version.value;
      out.workload_size = size.value;
      if (wtype.value) out.workload_type = wtype.value;
      out.scale_to_zero_enabled = s2z.checked;
      const vars = {};
      for (const line of env.value.split("\n")) {
        const i = line.indexOf("=");
        if (i > 0) vars[line.slice(0, i).trim()] = line.slice(i + 1).trim();
      }
      if (Object.keys(vars).length) out.environment_vars = vars;
      return out;
    },
    effectiveName() { const j = card.toJSON(); return j.name || defaultName(j); },
    // Client-side checks: [relative field, message] pairs.
    problems() {
      if (isExternal()) return extName.value.trim() ? [] : [["external_model.name", "Enter the provider's model name."]];
      const out = [];
      if (!model.value) out.push(["entity_name", "Choose a registered model."]);
      else if (!version.value) out.push(["entity_version", "Choose a version."]);
      return out;
    },
    focus() { (isExternal() ? provider : model).focus(); },
  };
  paintProvider();
  paintKind();
  fillModels();
  return card;
}
