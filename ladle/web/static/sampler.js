// An endpoint's metrics over time: first the hour the server kept (GET
// /api/2.0/ladle/serving-endpoints/{name}/metrics-history), then the endpoint's Prometheus
// metrics sampled by this browser every few seconds, keeping up to an hour, so charts can
// show rates and latency quantiles over time.
import { enc, epPath, get, session } from "./api.js";
import { parse } from "./prom.js";

export const INTERVAL_MS = 5000;
const KEEP_MS = 60 * 60 * 1000;
const stores = new Map(); // endpoint name -> { samples, listeners }

export function startSampler(name) {
  const store = stores.get(name) || { samples: [], listeners: new Set(), error: null, fromServer: 0 };
  stores.set(name, store);
  let timer = null;
  let stopped = false;
  async function tick() {
    if (stopped || !session.token) return;   // signed out: the app is on its way to sign-in
    try {
      const text = await get(`${epPath(name)}/metrics`, { accept: "text/plain" });
      store.error = null;
      const now = Date.now();
      store.samples.push({ t: now, series: parse(typeof text === "string" ? text : "") });
      while (store.samples.length && store.samples[0].t < now - KEEP_MS) {
        store.samples.shift();
        if (store.fromServer) store.fromServer -= 1;
      }
    } catch (e) {
      store.error = e;
    }
    if (stopped) return;
    store.listeners.forEach((fn) => fn(store));
    timer = setTimeout(tick, INTERVAL_MS);
  }
  async function history() {
    if (store.samples.length || !session.token) return;
    try {
      const h = await get(`/api/2.0/ladle/serving-endpoints/${enc(name)}/metrics-history`);
      const old = (h && h.samples) || [];
      store.samples.unshift(...old.filter((x) => !store.samples.length || x.t < store.samples[0].t));
      store.fromServer = old.length;
    } catch { /* an older server, or no right to it: browser samples only */ }
  }
  history().then(() => { if (!stopped) tick(); });
  return {
    store,
    subscribe(fn) { store.listeners.add(fn); fn(store); return () => store.listeners.delete(fn); },
    stop() { stopped = true; clearTimeout(timer); store.listeners.clear(); },
  };
}
