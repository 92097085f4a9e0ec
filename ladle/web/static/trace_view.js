// A request's trace, after a query: the playground sends its own W3C traceparent, so the MLflow
// trace id is known (tr-<trace id>); the trace is read through ladle's MLflow proxy (it needs
// CAN_READ on the endpoint's experiment) and drawn as a tree of spans with their timings.
import { ApiError, enc, get } from "./api.js";
import { h, replace } from "./dom.js";

const hex = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b.toString(16).padStart(2, "0")).join("");

// A fresh sampled traceparent and the MLflow trace id it makes.
export function newTrace() {
  const trace = hex(16);
  return { traceparent: `00-${trace}-${hex(8)}-01`, traceId: `tr-${trace}` };
}

// Spans as {id, parent, name, start, end} (ms), from MLflow's GetTrace answer (OTLP JSON spans).
export function spansOf(answer) {
  const spans = ((answer && answer.trace) || {}).spans || [];
  return spans.map((s) => ({
    id: s.span_id, parent: s.parent_span_id || null, name: s.name,
    start: Number(s.start_time_unix_nano) / 1e6, end: Number(s.end_time_unix_nano) / 1e6,
  }));
}

// Depth-first order (children by start time) with each span's depth.
function ordered(spans) {
  const ids = new Set(spans.map((s) => s.id));
  const kids = new Map();
  for (const s of spans) {
    const p = s.parent && ids.has(s.parent) ? s.parent : null;
    if (!kids.has(p)) kids.set(p, []);
    kids.get(p).push(s);
  }
  const out = [];
  const walk = (p, depth) => (kids.get(p) || []).sort((a, b) => a.start - b.start).forEach((s) => { out.push([s, depth]); walk(s.id, depth + 1); });
  walk(null, 0);
  return out;
}

export function traceTable(spans) {
  const t0 = Math.min(...spans.map((s) => s.start));
  const total = Math.max(...spans.map((s) => s.end)) - t0 || 1;
  return h("table", { class: "table trace-spans", id: "trace-spans" },
    h("thead", {}, h("tr", {}, h("th", {}, "Span"), h("th", {}, "Duration"), h("th", { style: { width: "40%" } }, "Timeline"))),
    h("tbody", {}, ordered(spans).map(([s, depth]) => h("tr", { "data-span": s.name },
      h("td", { style: { paddingLeft: `${0.5 + depth * 1.2}rem` } }, s.name),
      h("td", { class: "small" }, `${(s.end - s.start).toFixed(1)} ms`),
      h("td", {}, h("div", { class: "trace-bar", style: {
        marginLeft: `${((s.start - t0) / total) * 100}%`, width: `${Math.max(0.5, ((s.end - s.start) / total) * 100)}%` } }))))));
}

// Poll for the trace (its export is asynchronous) and show it in `box`; `alive()` false stops.
export async function showTrace(box, traceId, alive) {
  replace(box, h("span", { class: "spinner" }), " Waiting for the trace…");
  for (let i = 0; i < 20 && alive(); i++) {
    try {
      const spans = spansOf(await get(`/api/3.0/mlflow/traces/get?trace_id=${enc(traceId)}`));
      if (spans.length) {
        replace(box, h("div", { class: "muted small", id: "trace-id" }, `Trace ${traceId} · ${spans.length} spans`), traceTable(spans));
        return;
      }
    } catch (e) {
      if (e instanceof ApiError && e.status === 403) { replace(box, h("span", { class: "muted" }, `No access to this trace: ${e}`)); return; }
    }
    await new Promise((r) => setTimeout(r, Math.min(500 * (i + 1), 2000)));
  }
  if (alive()) replace(box, h("span", { class: "muted", id: "trace-none" }, "No trace for this request. An endpoint is traced when its telemetry config lists traces and a served entity sets MLFLOW_EXPERIMENT_ID."));
}
