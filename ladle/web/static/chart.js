// A small SVG line chart: time on x, one or more series on y, gaps where a value is null.
import { h, s } from "./dom.js";

const W = 440;
const H = 200;
const PAD = { l: 52, r: 12, t: 10, b: 24 };
export const COLORS = ["#2f6fd0", "#d0612f", "#8a3ffc", "#1a9a5a"];

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmtClock(t, seconds) {
  return new Date(t).toLocaleTimeString(undefined, seconds ? { hour: "2-digit", minute: "2-digit", second: "2-digit" } : { hour: "2-digit", minute: "2-digit" });
}

export function lineChart({ title, series, from, to, format = (v) => v.toFixed(2), unit = "" }) {
  const vals = series.flatMap((x) => x.points.map((p) => p[1]).filter((v) => v !== null && Number.isFinite(v)));
  const ymax = niceMax(Math.max(0, ...vals) * 1.1);
  const span = Math.max(1, to - from);
  const x = (t) => PAD.l + ((t - from) / span) * (W - PAD.l - PAD.r);
  const y = (v) => PAD.t + (1 - v / ymax) * (H - PAD.t - PAD.b);
  const grid = [];
  for (let i = 0; i <= 4; i += 1) {
    const v = (ymax * i) / 4;
    grid.push(s("line", { class: "grid", x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v) }),
      s("text", { x: PAD.l - 6, y: y(v) + 4, "text-anchor": "end" }, format(v)));
  }
  for (let i = 0; i <= 2; i += 1) {
    const t = from + (span * i) / 2;
    grid.push(s("text", { x: x(t), y: H - 6, "text-anchor": i === 0 ? "start" : i === 2 ? "end" : "middle" }, fmtClock(t, span < 15 * 60000)));
  }
  const lines = series.map((ser, i) => {
    let d = "";
    let pen = false;
    for (const [t, v] of ser.points) {
      if (v === null || !Number.isFinite(v) || t < from) { pen = false; continue; }
      d += `${pen ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    }
    const color = ser.color || COLORS[i % COLORS.length];
    const last = [...ser.points].reverse().find((p) => p[1] !== null && Number.isFinite(p[1]));
    const dot = last && last[0] >= from ? s("circle", { cx: x(last[0]), cy: y(last[1]), r: 2.5, fill: color }) : null;
    return s("g", {}, s("path", { d, fill: "none", stroke: color, "stroke-width": 2, "stroke-linejoin": "round" }), dot);
  });
  const latest = series.map((ser) => {
    const last = [...ser.points].reverse().find((p) => p[1] !== null && Number.isFinite(p[1]));
    return `${ser.label} ${last ? format(last[1]) + unit : "no data"}`;
  }).join(", ");
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${title}: ${latest}` },
    s("title", {}, `${title}: ${latest}`), ...grid,
    s("line", { class: "axis", x1: PAD.l, x2: W - PAD.r, y1: y(0), y2: y(0) }), ...lines);
  const legend = h("div", { class: "legend", "aria-hidden": "true" },
    series.map((ser, i) => h("span", { style: { "--c": ser.color || COLORS[i % COLORS.length] } }, ser.label)));
  return h("figure", { class: "panel", style: { margin: 0 } },
    h("figcaption", { class: "code-head" }, h("h3", { style: { margin: 0 } }, title), legend), svg);
}
