// Tiny DOM helpers: build elements, never parse HTML strings, so API data is always text.
const SVG_NS = "http://www.w3.org/2000/svg";
const PROPS = new Set(["value", "checked", "disabled", "selected", "hidden", "readOnly", "required",
  "multiple", "open", "indeterminate"]);

function apply(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false && !PROPS.has(k)) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (PROPS.has(k)) el[k] = v;
    else if (k === "class") el.setAttribute("class", Array.isArray(v) ? v.filter(Boolean).join(" ") : v);
    else if (k === "style" && typeof v === "object") {
      for (const [p, x] of Object.entries(v)) if (p.startsWith("--")) el.style.setProperty(p, x); else el.style[p] = x;
    }
    else el.setAttribute(k, v === true ? "" : String(v));
  }
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  append(el, children);
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let ids = 0;
export function uid(prefix = "f") { ids += 1; return `${prefix}-${ids}`; }

// A labelled form field: label, control, hint and an error slot the API can fill in place.
export function field(label, control, { hint, field: name, inline = false } = {}) {
  if (!control.id) control.id = uid();
  const hintEl = hint ? h("div", { class: "hint", id: control.id + "-hint" }, hint) : null;
  const err = h("div", { class: "field-error", id: control.id + "-err", role: "alert", hidden: true });
  const described = [hintEl && hintEl.id, err.id].filter(Boolean).join(" ");
  control.setAttribute("aria-describedby", described);
  const wrap = h("div", { class: inline ? "field field-inline" : "field", "data-field": name },
    inline ? [control, h("label", { for: control.id }, label)] : [h("label", { for: control.id }, label), control],
    hintEl, err);
  return wrap;
}

export function setFieldError(wrap, message) {
  const err = wrap.querySelector(":scope > .field-error");
  const control = wrap.classList.contains("field") ? wrap.querySelector("input, select, textarea") : null;
  if (!err) return;
  err.textContent = message || "";
  err.hidden = !message;
  if (control) control.toggleAttribute("aria-invalid", Boolean(message));
}

export function clearErrors(root) {
  root.querySelectorAll("[data-field]").forEach((w) => setFieldError(w, ""));
}

// Show an API error next to the field it names ("a.b.0.c: message"), or return false.
export function showAt(root, path, message) {
  const parts = (path || "").split(".").filter(Boolean);
  for (let n = parts.length; n > 0; n -= 1) {
    const key = parts.slice(0, n).join(".");
    const wrap = [...root.querySelectorAll("[data-field]")].find((e) => e.dataset.field === key);
    if (wrap && !wrap.closest("[hidden]")) {
      setFieldError(wrap, message);
      const control = wrap.querySelector("input:not([type=hidden]), select, textarea, button");
      wrap.scrollIntoView({ block: "center" });
      if (control) control.focus({ preventScroll: true });
      return true;
    }
  }
  return false;
}

export function options(values, selected) {
  return values.map((v) => {
    const [value, label] = Array.isArray(v) ? v : [v, v];
    return h("option", { value, selected: String(value) === String(selected) }, label);
  });
}

export function fmtTime(ms) {
  if (!ms) return "—";
  return new Date(ms).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export function relTime(ms) {
  if (!ms) return "—";
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 45) return "just now";
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const hr = Math.round(m / 60);
  if (hr < 24) return `${hr} h ago`;
  return new Date(ms).toLocaleDateString(undefined, { dateStyle: "medium" });
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = h("textarea", { class: "offscreen", readonly: true }, text);
    document.body.append(ta);
    ta.select();
    const ok = document.execCommand("copy");
    ta.remove();
    return ok;
  }
}

export function toast(message) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => el.classList.remove("show"), 2500);
}

export function copyButton(label, getText) {
  return h("button", {
    type: "button", class: "btn btn-small",
    onclick: async () => toast((await copyText(getText())) ? "Copied to clipboard" : "Copy failed: select the text and copy it"),
  }, label);
}

export function pretty(obj) { return JSON.stringify(obj, null, 2); }

// Ask before something that cannot be undone: a modal <dialog> (Cancel has the focus; Escape
// cancels). Resolves true when the action button was chosen.
export function confirmAction(title, text, action) {
  return new Promise((resolve) => {
    const id = uid("confirm");
    const dlg = h("dialog", { "aria-labelledby": id },
      h("form", { method: "dialog" },
        h("h2", { id }, title),
        h("p", {}, text),
        h("div", { class: "form-actions" },
          h("button", { value: "yes", class: "btn btn-primary" }, action),
          h("button", { value: "cancel", class: "btn", autofocus: true }, "Cancel"))));
    dlg.addEventListener("close", () => { dlg.remove(); resolve(dlg.returnValue === "yes"); });
    document.body.append(dlg);
    dlg.showModal();
  });
}

// An error box that shows an ApiError as the API said it ("CODE: message").
export function errorBox(attrs = {}) {
  const el = h("div", { class: "alert alert-error", role: "alert", hidden: true, ...attrs });
  el.show = (e) => { el.textContent = e ? String(e) : ""; el.hidden = !e; };
  return el;
}
