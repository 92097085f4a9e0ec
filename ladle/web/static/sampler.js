// Samples an endpoint's Prometheus metrics from the browser every few seconds, keeping up to
// an hour, so charts can show rates and latency quantiles over time.
import { epPath, get } from "./api.js";
import { parse } from "./prom.js";

export const INTERVAL_MS = 5000;
const KEEP_MS = 60 * 60 * 1000;
const stores = new Map(); // endpoint name -> { samples, listeners }

export function startSampler(name) {
  const store = stores.get(name) || { samples: [], listeners: new Set(), error: null };
  stores.set(name, store);
  let timer = null;
  let stopped = false;
  async function tick() {
    try {
      const text = await get(`${epPath(name)}/metrics`, { accept: "text/plain" });
      store.error = null;
      const now = Date.now();
      store.samples.push({ t: now, series: parse(typeof text === "string" ? text : "") });
      while (store.samples.length && store.samples[0].t < now - KEEP_MS) store.samples.shift();
    } catch (e) {
      store.error = e;
    }
    if (stopped) return;
    store.listeners.forEach((fn) => fn(store));
    timer = setTimeout(tick, INTERVAL_MS);
  }
  tick();
  return {
    store,
    subscribe(fn) { store.listeners.add(fn); fn(store); return () => store.listeners.delete(fn); },
    stop() { stopped = true; clearTimeout(timer); store.listeners.clear(); },
  };
}
