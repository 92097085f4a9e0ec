// A list page's refresh: fetch, show, fetch again in 2 s while anything is changing, else in 30 s.
import { get } from "./api.js";

const FAST_MS = 2000;
const SLOW_MS = 30000;

// Polls `url`. `show(data)` renders an answer and returns whether anything is in progress;
// `status` then reads `busyText` or the time of the update; `error` shows a failed fetch.
// `stop()` ends it (the page's cleanup).
export function pollList(url, { show, status, error, busyText }) {
  let timer = null;
  let alive = true;
  async function load() {
    clearTimeout(timer);
    try {
      const data = await get(url);
      if (!alive) return;
      error.hidden = true;
      const busy = show(data);
      status.textContent = busy ? busyText : `Updated ${new Date().toLocaleTimeString()}`;
      timer = setTimeout(load, busy ? FAST_MS : SLOW_MS);
    } catch (e) {
      if (!alive) return;
      error.textContent = e.toString();
      error.hidden = false;
      timer = setTimeout(load, SLOW_MS);
    }
  }
  load();
  return { stop() { alive = false; clearTimeout(timer); } };
}
