// Metrics tab: requests/s, 4xx/5xx per second, latency p50/p99 and replicas beside the load
// (replicas, the autoscaler's target, requests in flight and queued), charted from Prometheus
// text sampled by this browser (GET /api/2.0/serving-endpoints/{name}/metrics).
import { h, options, replace } from "../dom.js";
import { lineChart } from "../chart.js";
import { buckets, entities, quantile, rate, total } from "../prom.js";
import { INTERVAL_MS } from "../sampler.js";

const WINDOW_MS = 30000;
const RANGES = [[5, "Last 5 minutes"], [15, "Last 15 minutes"], [60, "Last hour"]];

function fmtRate(v) { return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2); }
function fmtMs(v) { return v >= 1000 ? `${(v / 1000).toFixed(1)}s` : `${v >= 10 ? v.toFixed(0) : v.toFixed(1)}`; }

export function mount(panel, ctx) {
  const entitySel = h("select", { id: "metrics-entity" }, h("option", { value: "" }, "All served entities"));
  const rangeSel = h("select", { id: "metrics-range" }, options(RANGES, 60));
  const stats = h("div", { class: "stats", "aria-live": "off" });
  const charts = h("div", { class: "grid-charts" });
  const note = h("p", { class: "hint" });
  const error = h("div", { class: "alert alert-error", role: "alert", hidden: true });
  let lastEntities = "";

  function paint(store) {
    const samples = store.samples;
    error.hidden = !store.error;
    if (store.error) error.textContent = `Could not read metrics: ${store.error}`;
    const ents = samples.length ? entities(samples[samples.length - 1].series) : [];
    if (ents.join() !== lastEntities) {
      lastEntities = ents.join();
      const keepSel = entitySel.value;
      replace(entitySel, h("option", { value: "" }, "All served entities"), options(ents, keepSel));
    }
    const ent = entitySel.value || null;
    const now = Date.now();
    const from = Math.max(now - Number(rangeSel.value) * 60000, samples.length ? samples[0].t : now - 60000);
    const reqs = [];
    const e4 = [];
    const e5 = [];
    const p50 = [];
    const p99 = [];
    const repl = [];
    const tgt = [];
    const load = [];
    let j = 0;
    for (let i = 1; i < samples.length; i += 1) {
      const a = samples[i - 1];
      const b = samples[i];
      const dt = (b.t - a.t) / 1000;
      if (dt > (INTERVAL_MS / 1000) * 4) { reqs.push([b.t, null]); e4.push([b.t, null]); e5.push([b.t, null]); p50.push([b.t, null]); p99.push([b.t, null]); continue; }
      reqs.push([b.t, rate(total(b.series, "request_count_total", ent), total(a.series, "request_count_total", ent), dt)]);
      e4.push([b.t, rate(total(b.series, "request_4xx_count_total", ent), total(a.series, "request_4xx_count_total", ent), dt)]);
      e5.push([b.t, rate(total(b.series, "request_5xx_count_total", ent), total(a.series, "request_5xx_count_total", ent), dt)]);
      while (j < i - 1 && samples[j + 1].t <= b.t - WINDOW_MS) j += 1;
      const nb = buckets(b.series, "request_latency_ms", ent);
      const ob = buckets(samples[j].series, "request_latency_ms", ent);
      p50.push([b.t, quantile(0.5, nb, ob)]);
      p99.push([b.t, quantile(0.99, nb, ob)]);
      const has = (n) => b.series.some((x) => x.name === n && (!ent || x.labels.served_entity === ent));
      repl.push([b.t, has("replica_count") ? total(b.series, "replica_count", ent) : null]);
      tgt.push([b.t, has("replica_target_count") ? total(b.series, "replica_target_count", ent) : null]);
      load.push([b.t, has("in_flight_requests") ? total(b.series, "in_flight_requests", ent) + total(b.series, "queued_requests", ent) : null]);
    }
    const last = samples.length ? samples[samples.length - 1].series : [];
    const g = (n) => { const v = last.filter((x) => x.name === n && (!ent || x.labels.served_entity === ent)); return v.length ? v : null; };
    const cpu = g("cpu_usage_percentage");
    const mem = g("mem_usage_percentage");
    const reps = g("replica_count");
    const stat = (label, value) => h("div", { class: "stat" }, h("span", { class: "muted small" }, label), h("b", {}, value));
    replace(stats,
      stat("Requests", String(total(last, "request_count_total", ent))),
      stat("4xx", String(total(last, "request_4xx_count_total", ent))),
      stat("5xx", String(total(last, "request_5xx_count_total", ent))),
      stat("CPU", cpu ? `${cpu.reduce((a, x) => a + x.value, 0).toFixed(1)}%` : "—"),
      stat("Memory", mem ? `${mem.reduce((a, x) => a + x.value, 0).toFixed(1)}%` : "—"),
      stat("Replicas", reps ? String(reps.reduce((a, x) => a + x.value, 0)) : "—"));
    replace(charts,
      lineChart({ title: "Requests per second", series: [{ label: "requests/s", points: reqs }], from, to: now, format: fmtRate, unit: "/s" }),
      lineChart({ title: "Errors per second", series: [{ label: "4xx/s", points: e4, color: "#b58a00" }, { label: "5xx/s", points: e5, color: "#c4251d" }], from, to: now, format: fmtRate, unit: "/s" }),
      lineChart({ title: "Latency (ms)", series: [{ label: "p50", points: p50 }, { label: "p99", points: p99, color: "#8a3ffc" }], from, to: now, format: fmtMs, unit: " ms" }),
      lineChart({ title: "Replicas and load", series: [{ label: "replicas", points: repl }, { label: "target", points: tgt, color: "#b58a00" }, { label: "in flight + queued", points: load, color: "#8a3ffc" }], from, to: now, format: (v) => v.toFixed(0), unit: "" }));
    const own = samples.length - (store.fromServer || 0);
    const kept = store.fromServer ? `${store.fromServer} kept by the server, then ` : "";
    note.textContent = samples.length
      ? `Since ${new Date(samples[0].t).toLocaleTimeString()}: ${kept}sampled by this browser every ${INTERVAL_MS / 1000} s (${own} sample${own === 1 ? "" : "s"}); latency quantiles over ${WINDOW_MS / 1000} s windows.`
      : "Waiting for the first sample…";
  }

  const unsubscribe = ctx.sampler.subscribe(paint);
  entitySel.addEventListener("change", () => paint(ctx.sampler.store));
  rangeSel.addEventListener("change", () => paint(ctx.sampler.store));
  panel.append(
    h("div", { class: "row", style: { marginBottom: ".75rem" } },
      h("div", { class: "field", style: { flex: "0 1 240px" } }, h("label", { for: "metrics-entity" }, "Served entity"), entitySel),
      h("div", { class: "field", style: { flex: "0 1 200px" } }, h("label", { for: "metrics-range" }, "Time range"), rangeSel)),
    error, stats, charts, note);
  return { cleanup: unsubscribe };
}
