// Logs tab: build logs and runtime logs of each served entity, with follow mode.
import { enc, epPath, get } from "../api.js";
import { h, options, replace } from "../dom.js";

const FOLLOW_MS = 2000;

function names(ep) {
  const out = [];
  for (const c of [ep.pending_config, ep.config]) for (const e of (c && c.served_entities) || []) if (!out.includes(e.name)) out.push(e.name);
  return out;
}

export function mount(panel, ctx) {
  const entity = h("select", { id: "logs-entity" });
  const kindName = "logs-kind";
  const radio = (value, label, checked) => h("label", {}, h("input", { type: "radio", name: kindName, value, checked }), label);
  const kind = h("div", { class: "segmented", role: "radiogroup", "aria-label": "Which logs" }, radio("logs", "Server logs", true), radio("build-logs", "Build logs", false));
  const follow = h("input", { type: "checkbox", id: "logs-follow", checked: true });
  const refreshBtn = h("button", { type: "button", class: "btn" }, "Refresh");
  const status = h("span", { class: "muted small", role: "status" });
  const pre = h("pre", { class: "logs", id: "logs", role: "log", tabindex: "0", "aria-label": "Log output" });
  const error = h("div", { class: "alert alert-error", role: "alert", hidden: true });
  let timer = null;
  let alive = true;
  let known = "";

  const which = () => panel.querySelector(`input[name=${kindName}]:checked`).value;
  const nearBottom = () => pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;

  async function load() {
    clearTimeout(timer);
    const name = entity.value;
    if (!name) return;
    try {
      const data = await get(`${epPath(ctx.name)}/served-models/${enc(name)}/${which()}`);
      if (!alive) return;
      error.hidden = true;
      const text = data.logs || "";
      if (pre.textContent !== text) {
        pre.textContent = text || "(no log lines yet)";
        if (follow.checked) pre.scrollTop = pre.scrollHeight;
      }
      status.textContent = `Fetched ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      if (!alive) return;
      error.textContent = e.toString();
      error.hidden = false;
    }
    if (alive && follow.checked) timer = setTimeout(load, FOLLOW_MS);
  }

  function paint(ep) {
    const list = names(ep);
    if (list.join() === known) return;
    known = list.join();
    const keep = entity.value || list[0];
    replace(entity, options(list, keep));
    load();
  }

  pre.addEventListener("scroll", () => { if (follow.checked && !nearBottom()) follow.checked = false; });
  follow.addEventListener("change", () => { if (follow.checked) { pre.scrollTop = pre.scrollHeight; load(); } else clearTimeout(timer); });
  entity.addEventListener("change", () => { pre.textContent = ""; load(); });
  kind.addEventListener("change", () => { pre.textContent = ""; load(); });
  refreshBtn.addEventListener("click", load);
  panel.append(h("div", { class: "panel" },
    h("div", { class: "row", style: { alignItems: "flex-end", marginBottom: ".75rem" } },
      h("div", { class: "field", style: { flex: "0 1 260px", margin: 0 } }, h("label", { for: "logs-entity" }, "Served entity"), entity),
      kind,
      h("div", { class: "field field-inline", style: { flex: "0 0 auto", margin: 0 } }, follow, h("label", { for: "logs-follow" }, "Follow")),
      refreshBtn, status),
    error, pre));
  if (ctx.ep) paint(ctx.ep);
  const off = ctx.onEndpoint(paint);
  return { cleanup() { alive = false; clearTimeout(timer); off(); } };
}
