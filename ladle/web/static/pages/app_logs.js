// An app's log (GET /api/2.0/apps/{name}/logs, CAN_MANAGE): the last N lines, refreshed on
// request or every few seconds while "Follow" is on.
import { enc, get } from "../api.js";
import { h, options } from "../dom.js";

const FOLLOW_MS = 3000;
const TAILS = [["200", "Last 200 lines"], ["1000", "Last 1,000 lines"], ["0", "Everything"]];

export function mountLogs(host, name) {
  const tail = h("select", { id: "app-logs-tail", "aria-label": "How much of the log" }, options(TAILS, "200"));
  const follow = h("input", { type: "checkbox", id: "app-logs-follow" });
  const refresh = h("button", { type: "button", class: "btn", id: "app-logs-refresh" }, "Refresh");
  const status = h("span", { class: "muted small", role: "status" });
  const pre = h("pre", { class: "logs", id: "app-logs", role: "log", tabindex: "0", "aria-label": "App log" });
  const error = h("div", { class: "alert alert-error", role: "alert", hidden: true });
  let timer = null;
  let alive = true;

  async function load() {
    clearTimeout(timer);
    try {
      const data = await get(`/api/2.0/apps/${enc(name)}/logs?tail_lines=${tail.value}`);
      if (!alive) return;
      error.hidden = true;
      const text = data.logs || "(no log lines yet)";
      if (pre.textContent !== text) {
        const atEnd = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
        pre.textContent = text;
        if (atEnd || follow.checked) pre.scrollTop = pre.scrollHeight;
      }
      status.textContent = `Fetched ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      if (!alive) return;
      error.textContent = e.status === 403 ? `${e} (reading an app's log needs CAN_MANAGE on it)` : e.toString();
      error.hidden = false;
    }
    if (alive && follow.checked) timer = setTimeout(load, FOLLOW_MS);
  }

  follow.addEventListener("change", load);
  tail.addEventListener("change", load);
  refresh.addEventListener("click", load);
  host.append(h("div", { class: "panel", id: "app-logs-panel" },
    h("h2", {}, "Logs"),
    h("div", { class: "row", style: { alignItems: "center", marginBottom: ".75rem" } },
      h("div", { style: { flex: "0 1 220px" } }, tail),
      h("div", { class: "field field-inline", style: { flex: "0 0 auto", margin: 0 } }, follow, h("label", { for: "app-logs-follow" }, "Follow")),
      refresh, status),
    error, pre));
  load();
  return { reload: load, cleanup() { alive = false; clearTimeout(timer); } };
}
