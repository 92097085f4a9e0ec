// Query playground. Custom models: a JSON editor prefilled from the endpoint's OpenAPI
// document, the response and the served model that answered. Chat endpoints: a chat box
// that streams tokens (see chat.js). Agent endpoints (agent/v1/responses): the Responses API
// and the request's trace (agent.js). All offer "copy as curl / databricks-sdk / openai".
import { ApiError, enc, epPath, get, send } from "../api.js";
import { copyButton, h, options, pretty, replace } from "../dom.js";
import { invocationSchema, scoringExample, taskExample } from "../examples.js";
import { curl, openai, sdk } from "../snippets.js";
import { mountChat } from "../chat.js";
import { mountAgent } from "../agent.js";

export function snippetBox(getRequest) {
  const pre = h("pre", { class: "code", id: "snippet", hidden: true, tabindex: "0", "aria-label": "Code snippet" });
  const show = (label, fn) => h("button", { type: "button", class: "btn btn-small", "data-snippet": label, onclick: () => {
    pre.textContent = fn(getRequest());
    pre.hidden = false;
    pre.dataset.kind = label;
  } }, label);
  const gens = {
    curl: (r) => curl(location.origin, r.path, r.body),
    "Python (databricks-sdk)": (r) => sdk(location.origin, r.name, r.served, r.body),
    openai: (r) => openai(location.origin, r.name, r.task, r.body),
  };
  return h("div", { class: "panel" },
    h("div", { class: "code-head" }, h("h2", { style: { margin: 0 } }, "Use it from code"),
      h("div", { class: "btn-group" }, Object.entries(gens).map(([k, fn]) => show(k, fn)),
        copyButton("Copy snippet", () => pre.hidden ? gens.curl(getRequest()) : pre.textContent))),
    h("p", { class: "hint" }, "Show a snippet for the current request, then copy it. Set DATABRICKS_TOKEN to your ladle token."),
    pre);
}

export function mount(panel, ctx) {
  const ep = ctx.ep;
  if (ep && ep.task === "llm/v1/chat") return mountChat(panel, ctx, snippetBox);
  if (ep && ep.task === "agent/v1/responses") return mountAgent(panel, ctx, snippetBox);
  const target = h("select", { id: "query-target" });
  const editor = h("textarea", { class: "json-editor", id: "query-body", spellcheck: "false", "aria-describedby": "query-body-err" });
  const editorErr = h("div", { class: "field-error", id: "query-body-err", role: "alert", hidden: true });
  const sendBtn = h("button", { type: "submit", class: "btn btn-primary" }, "Send request");
  const resetBtn = h("button", { type: "button", class: "btn" }, "Reset example");
  const formatBtn = h("button", { type: "button", class: "btn" }, "Format");
  const meta = h("div", { class: "response-meta", id: "response-meta", "aria-live": "polite" }, h("span", { class: "muted" }, "No request sent yet."));
  const out = h("pre", { class: "code", id: "response", tabindex: "0", "aria-label": "Response body" });
  let doc = null;
  let touched = false;
  let alive = true;

  const pathFor = (served) => served ? `/serving-endpoints/${enc(ctx.name)}/served-models/${enc(served)}/invocations` : `/serving-endpoints/${enc(ctx.name)}/invocations`;
  function example() {
    const e = ctx.ep;
    const byTask = e && taskExample(e.task);
    if (byTask) return byTask;
    const schema = doc && (invocationSchema(doc, `/serving-endpoints/${ctx.name}/served-models/${target.value}/invocations`)
      || invocationSchema(doc, `/serving-endpoints/${ctx.name}/invocations`));
    return scoringExample(schema);
  }
  function prefill(force) { if (force || !touched) { editor.value = pretty(example()); touched = false; } }
  function parsed() {
    try { const v = JSON.parse(editor.value); editorErr.hidden = true; editor.removeAttribute("aria-invalid"); return v; } catch (e) {
      editorErr.textContent = `Not valid JSON: ${e.message}`;
      editorErr.hidden = false;
      editor.setAttribute("aria-invalid", "true");
      return undefined;
    }
  }
  const request = () => {
    let body;
    try { body = JSON.parse(editor.value); } catch { body = {}; }
    return { name: ctx.name, served: target.value || null, task: ctx.ep && ctx.ep.task, path: pathFor(target.value), body };
  };

  async function run(ev) {
    ev.preventDefault();
    const body = parsed();
    if (body === undefined) { editor.focus(); return; }
    sendBtn.disabled = true;
    replace(meta, h("span", { class: "spinner" }), " Waiting for the response…");
    const t0 = performance.now();
    try {
      const resp = await send("POST", pathFor(target.value), { body: editor.value });
      const ms = Math.round(performance.now() - t0);
      const text = await resp.text();
      let shown = text;
      try { shown = pretty(JSON.parse(text)); } catch { /* not JSON */ }
      const served = resp.headers.get("served-model-name");
      replace(meta, h("span", { class: "badge badge-ok" }, `${resp.status} ${resp.statusText || "OK"}`),
        h("span", { class: "chip", id: "served-model" }, "served-model-name: ", h("b", {}, served || "—")), h("span", { class: "muted small" }, `${ms} ms`));
      out.textContent = shown;
    } catch (e) {
      const ms = Math.round(performance.now() - t0);
      replace(meta, h("span", { class: "badge badge-bad" }, e instanceof ApiError ? `${e.status} ${e.code || "error"}` : "error"), h("span", { class: "muted small" }, `${ms} ms`));
      out.textContent = e instanceof ApiError ? e.toString() : String(e);
    } finally {
      sendBtn.disabled = false;
    }
  }

  let knownTargets = null;
  function paintTargets(e) {
    const ents = ((e.config && e.config.served_entities) || []).map((x) => x.name);
    if (ents.join() === knownTargets) return;
    knownTargets = ents.join();
    const keep = target.value;
    replace(target, h("option", { value: "" }, "Endpoint (traffic split)"), options(ents, keep));
  }

  editor.addEventListener("input", () => { touched = true; });
  editor.addEventListener("keydown", (ev) => { if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) run(ev); });
  formatBtn.addEventListener("click", () => { const v = parsed(); if (v !== undefined) editor.value = pretty(v); });
  resetBtn.addEventListener("click", () => prefill(true));
  target.addEventListener("change", () => prefill(false));
  const form = h("form", { class: "panel", id: "query-form", "aria-label": "Query the endpoint" },
    h("h2", {}, "Request"),
    h("div", { class: "field" }, h("label", { for: "query-target" }, "Send to"), target),
    h("div", { class: "field" }, h("label", { for: "query-body" }, "Body (JSON)"), editor, editorErr,
      h("div", { class: "hint" }, "Prefilled from the endpoint's OpenAPI document. Ctrl+Enter sends.")),
    h("div", { class: "form-actions" }, sendBtn, formatBtn, resetBtn));
  form.addEventListener("submit", run);
  panel.append(h("div", { class: "grid2" },
    h("div", {}, form, snippetBox(request)),
    h("div", { class: "panel" }, h("h2", {}, "Response"), meta, out)));

  if (ctx.ep) paintTargets(ctx.ep);
  prefill(true);
  get(`${epPath(ctx.name)}/openapi`).then((d) => { if (alive) { doc = typeof d === "string" ? JSON.parse(d) : d; prefill(false); } })
    .catch(() => { /* keep the generic example */ });
  const off = ctx.onEndpoint(paintTargets);
  return { cleanup() { alive = false; off(); } };
}
