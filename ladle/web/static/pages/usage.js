// Usage: requests and tokens per endpoint and requester over time, from the usage table
// (GET /api/2.0/ladle/usage?group_by=endpoint|requester|day[&endpoint=NAME]). The server
// answers 404 while usage tracking is off or nothing was recorded.
import { ApiError, enc, get } from "../api.js";
import { h, options, replace, s } from "../dom.js";

const METRICS = [["requests", "Requests"], ["tokens", "Tokens (input + output)"]];
const PALETTE = ["#2f6fd0", "#d0612f", "#8a3ffc", "#1a9a5a", "#b58a00", "#c4251d", "#59636e"];
const TOP = 6;
const first = (row, keys) => { for (const k of keys) if (row[k] !== undefined && row[k] !== null) return row[k]; return undefined; };
const num = (v) => (Number.isFinite(Number(v)) ? Number(v) : 0);

export function rowsOf(data) {
  if (Array.isArray(data)) return data;
  for (const k of ["rows", "usage", "results"]) if (Array.isArray(data && data[k])) return data[k];
  return [];
}

function norm(r, key) {
  return {
    key: String(first(r, [key, `${key}_name`]) ?? "—"),
    requests: num(first(r, ["request_count", "requests", "count"])),
    errors: num(first(r, ["error_count", "errors"])),
    input: num(first(r, ["input_token_count", "input_tokens", "prompt_tokens"])),
    output: num(first(r, ["output_token_count", "output_tokens", "completion_tokens"])),
  };
}

async function usage(groupBy, endpoint) {
  const q = `group_by=${groupBy}${endpoint ? `&endpoint=${enc(endpoint)}` : ""}`;
  return rowsOf(await get(`/api/2.0/ladle/usage?${q}`)).map((r) => norm(r, groupBy));
}

function barChart(days, series, metric) {
  const W = 900, H = 240, PAD = { l: 60, r: 10, t: 10, b: 28 };
  const value = (r) => (metric === "tokens" ? r.input + r.output : r.requests);
  const stacks = days.map((d) => series.map((ser) => { const r = ser.rows.find((x) => x.key === d); return r ? value(r) : 0; }));
  const ymax = Math.max(1, ...stacks.map((st) => st.reduce((a, b) => a + b, 0)));
  const band = (W - PAD.l - PAD.r) / Math.max(1, days.length);
  const y = (v) => PAD.t + (1 - v / ymax) * (H - PAD.t - PAD.b);
  const els = [];
  for (let i = 0; i <= 4; i += 1) {
    const v = (ymax * i) / 4;
    els.push(s("line", { class: "grid", x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v) }),
      s("text", { x: PAD.l - 6, y: y(v) + 4, "text-anchor": "end" }, Math.round(v).toLocaleString()));
  }
  const every = Math.ceil(days.length / 12);
  days.forEach((d, i) => {
    let acc = 0;
    stacks[i].forEach((v, k) => {
      if (!v) return;
      const bw = Math.max(1, Math.min(band * 0.7, 56));
      els.push(s("rect", { x: PAD.l + (i + 0.5) * band - bw / 2, width: bw, y: y(acc + v), height: y(acc) - y(acc + v), fill: PALETTE[k % PALETTE.length] },
        s("title", {}, `${d} · ${series[k].label}: ${v.toLocaleString()}`)));
      acc += v;
    });
    if (i % every === 0) els.push(s("text", { x: PAD.l + (i + 0.5) * band, y: H - 8, "text-anchor": "middle" }, d));
  });
  return h("figure", { style: { margin: 0 } },
    h("div", { class: "legend" }, series.map((ser, i) => h("span", { style: { "--c": PALETTE[i % PALETTE.length] } }, ser.label))),
    s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${metric} per day by endpoint` }, ...els));
}

function table(id, heading, rows) {
  const fmt = (n) => n.toLocaleString();
  return h("div", { class: "panel" }, h("h2", {}, `By ${heading.toLowerCase()}`), h("div", { class: "table-wrap" }, h("table", { id },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, heading),
      ["Requests", "Errors", "Input tokens", "Output tokens", "Total tokens"].map((t) => h("th", { scope: "col", class: "num" }, t)))),
    h("tbody", {}, rows.length ? rows.map((r) => h("tr", {}, h("td", {}, r.key), h("td", { class: "num" }, fmt(r.requests)), h("td", { class: "num" }, fmt(r.errors)),
      h("td", { class: "num" }, fmt(r.input)), h("td", { class: "num" }, fmt(r.output)), h("td", { class: "num" }, fmt(r.input + r.output))))
      : h("tr", {}, h("td", { colspan: 6, class: "empty" }, "Nothing recorded")))))); 
}

export function render(root, params, ctx) {
  ctx.title("Usage");
  const endpointSel = h("select", { id: "usage-endpoint" }, h("option", { value: "" }, "All endpoints"));
  const metric = h("select", { id: "usage-metric" }, options(METRICS, "requests"));
  const content = h("div", { id: "usage-content" }, h("p", { class: "muted" }, h("span", { class: "spinner" }), " Loading usage…"));
  let alive = true;
  let state = null;

  function paint() {
    if (!state) return;
    const { byEndpoint, byRequester, series } = state;
    const days = [...new Set(series.flatMap((x) => x.rows.map((r) => r.key)))].sort();
    replace(content,
      h("div", { class: "panel" }, h("h2", {}, `${metric.value === "tokens" ? "Tokens" : "Requests"} per day (UTC)`),
        days.length ? barChart(days, series, metric.value) : h("p", { class: "muted" }, "Nothing recorded yet.")),
      h("div", { class: "grid2", style: { gridTemplateColumns: "1fr 1fr" } },
        table("usage-by-endpoint", "Endpoint", byEndpoint), table("usage-by-requester", "Requester", byRequester)));
  }

  async function load() {
    const ep = endpointSel.value || null;
    try {
      const [byEndpoint, byRequester] = await Promise.all([usage("endpoint", ep), usage("requester", ep)]);
      const top = ep ? [ep] : byEndpoint.slice(0, TOP).map((r) => r.key);
      const series = await Promise.all(top.map(async (name) => ({ label: name, rows: await usage("day", name) })));
      if (!ep && byEndpoint.length > TOP) {
        const all = await usage("day", null);
        const shown = (d) => series.reduce((a, x) => { const r = x.rows.find((y) => y.key === d); return a + (r ? r.requests : 0); }, 0);
        const shownTok = (d) => series.reduce((a, x) => { const r = x.rows.find((y) => y.key === d); return a + (r ? r.input + r.output : 0); }, 0);
        series.push({ label: "other endpoints", rows: all.map((r) => ({ ...r, requests: Math.max(0, r.requests - shown(r.key)), input: Math.max(0, r.input + r.output - shownTok(r.key)), output: 0 })) });
      }
      if (!alive) return;
      if (!ep && endpointSel.options.length === 1) endpointSel.append(...options(byEndpoint.map((r) => r.key), ""));
      state = { byEndpoint, byRequester, series };
      paint();
    } catch (e) {
      if (!alive) return;
      if (e instanceof ApiError && [404, 501].includes(e.status)) {
        const missing = e.code === "ENDPOINT_NOT_FOUND" || e.status === 501;
        replace(content, h("div", { class: "panel", id: "usage-unavailable" },
          h("h2", {}, missing ? "Usage tracking is not available on this server" : "Usage tracking is not enabled, or nothing was recorded yet"),
          h("p", {}, h("code", {}, "GET /api/2.0/ladle/usage"), " answered: ", e.toString()),
          h("p", { class: "muted" }, "Turn usage tracking on for an endpoint in its AI gateway tab. Requests and tokens per endpoint, requester and day then show here.")));
      } else {
        replace(content, h("div", { class: "alert alert-error", role: "alert" }, e.toString()));
      }
    }
  }

  endpointSel.addEventListener("change", load);
  metric.addEventListener("change", paint);
  root.append(
    h("div", { class: "page-head" }, h("h1", {}, "Usage")),
    h("div", { class: "row", style: { marginBottom: ".75rem" } },
      ...[["usage-endpoint", "Endpoint", endpointSel], ["usage-metric", "Chart", metric]].map(([id, label, c]) =>
        h("div", { class: "field", style: { flex: "0 1 260px" } }, h("label", { for: id }, label), c))),
    content);
  load();
  return { cleanup() { alive = false; } };
}
