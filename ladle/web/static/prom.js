// Prometheus text exposition: parse it, and derive rates and histogram quantiles.
const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parse(text) {
  const out = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[2]) for (const l of m[2].matchAll(LABEL)) labels[l[1]] = l[2].replace(/\\"/g, '"').replace(/\\n/g, "\n").replace(/\\\\/g, "\\");
    const v = m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : Number(m[3]);
    out.push({ name: m[1], labels, value: v });
  }
  return out;
}

const keep = (entity) => (s) => !entity || s.labels.served_entity === entity;

export function total(series, name, entity) {
  return series.filter((s) => s.name === name && keep(entity)(s)).reduce((a, s) => a + s.value, 0);
}

export function entities(series) {
  return [...new Set(series.filter((s) => s.labels.served_entity).map((s) => s.labels.served_entity))].sort();
}

// Cumulative bucket counts by upper bound, summed over the selected entities.
export function buckets(series, name, entity) {
  const by = new Map();
  for (const s of series) {
    if (s.name !== `${name}_bucket` || !keep(entity)(s)) continue;
    const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
    by.set(le, (by.get(le) || 0) + s.value);
  }
  return [...by.entries()].sort((a, b) => a[0] - b[0]);
}

// Like PromQL histogram_quantile over the difference of two cumulative bucket sets.
export function quantile(q, newer, older) {
  const old = new Map(older || []);
  const deltas = newer.map(([le, c]) => [le, Math.max(0, c - (old.get(le) || 0))]);
  if (!deltas.length) return null;
  const count = deltas[deltas.length - 1][1];
  if (!count) return null;
  const rank = q * count;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, c] of deltas) {
    if (c >= rank) {
      if (le === Infinity) return prevLe;
      if (c === prevCount) return le;
      return prevLe + (le - prevLe) * ((rank - prevCount) / (c - prevCount));
    }
    prevLe = le;
    prevCount = c;
  }
  return prevLe;
}

// Per-second rate of a counter between two samples (a reset counts from zero).
export function rate(newer, older, seconds) {
  if (seconds <= 0) return null;
  const d = newer >= older ? newer - older : newer;
  return d / seconds;
}
