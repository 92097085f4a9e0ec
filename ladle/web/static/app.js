// The shell: routing (History API under /ui), sign-in guard, navigation, page lifecycle.
import { session } from "./api.js";
import { h, replace } from "./dom.js";
import { whoami } from "./whoami.js";

const ROUTES = [
  { re: /^\/ui\/signin$/, page: "signin", load: () => import("./pages/signin.js"), open: true },
  { re: /^\/ui\/?$|^\/ui\/endpoints\/?$/, page: "endpoints", load: () => import("./pages/list.js") },
  { re: /^\/ui\/create$/, page: "create", load: () => import("./pages/form.js") },
  { re: /^\/ui\/endpoints\/([^/]+)\/edit$/, page: "edit", keys: ["name"], load: () => import("./pages/form.js") },
  { re: /^\/ui\/endpoints\/([^/]+)(?:\/([a-z-]+))?\/?$/, page: "endpoint", keys: ["name", "tab"],
    load: () => import("./pages/endpoint.js") },
  { re: /^\/ui\/usage$/, page: "usage", load: () => import("./pages/usage.js") },
  { re: /^\/ui\/apps\/?$/, page: "apps", load: () => import("./pages/apps.js") },
  { re: /^\/ui\/apps\/([^/]+)\/?$/, page: "app", keys: ["name"], load: () => import("./pages/app.js") },
  { re: /^\/ui\/me$/, page: "me", load: () => import("./pages/me.js") },
  { re: /^\/ui\/admin\/?$/, page: "admin", load: () => import("./pages/admin.js") },
  { re: /^\/ui\/admin\/(users|service-principals|groups)$/, page: "admin", keys: ["section"],
    load: () => import("./pages/admin.js") },
];

const main = document.getElementById("main");
let current = null; // { key, instance }
let seq = 0;

function match(pathname) {
  for (const r of ROUTES) {
    const m = r.re.exec(pathname);
    if (!m) continue;
    const params = {};
    (r.keys || []).forEach((k, i) => { if (m[i + 1] !== undefined) params[k] = decodeURIComponent(m[i + 1]); });
    return { route: r, params };
  }
  return null;
}

export function navigate(path, { replace: rep = false } = {}) {
  if (rep) history.replaceState(null, "", path); else history.pushState(null, "", path);
  render();
}

function signInPath() {
  const here = location.pathname + location.search;
  return "/ui/signin" + (here.startsWith("/ui/signin") ? "" : `?next=${encodeURIComponent(here)}`);
}

function updateChrome(page) {
  const signedIn = Boolean(session.token);
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("signout").hidden = !signedIn;
  document.querySelectorAll("[data-nav]").forEach((a) => {
    const on = a.dataset.nav === page || (a.dataset.nav === "endpoints" && ["endpoint", "create", "edit"].includes(page))
      || (a.dataset.nav === "apps" && page === "app");
    if (on) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  });
  const who = document.getElementById("whoami");
  const adminNav = document.getElementById("nav-admin");
  if (!signedIn) { who.hidden = true; adminNav.hidden = true; return; }
  // The signed-in name links to the Me page; the Admin entry shows for admins only.
  whoami().then((me) => {
    if (!me || !session.token) return;
    replace(who.querySelector("[data-name]"), me.displayName || me.name);
    who.title = `${me.name}: your account and tokens`;
    who.hidden = false;
    adminNav.hidden = !me.isAdmin;
  }).catch(() => { who.hidden = true; adminNav.hidden = true; });
}

async function render() {
  const found = match(location.pathname);
  if (!found) {
    teardown();
    replace(main, h("div", { class: "panel" }, h("h1", {}, "Page not found"),
      h("p", {}, h("a", { href: "/ui/endpoints" }, "Go to the serving endpoints"))));
    return;
  }
  const { route, params } = found;
  if (!route.open && !session.token) { navigate(signInPath(), { replace: true }); return; }
  updateChrome(route.page);
  const key = `${route.page}:${params.name || ""}`;
  if (current && current.key === key && current.instance && current.instance.update) {
    current.instance.update(params);
    return;
  }
  teardown();
  const mine = ++seq;
  const mod = await route.load();
  if (mine !== seq) return;
  replace(main);
  const ctx = {
    navigate,
    title: (t) => { document.title = `${t} · ladle`; },
  };
  current = { key, instance: mod.render(main, { ...params, page: route.page }, ctx) || null };
  const heading = main.querySelector("h1");
  if (heading && !main.contains(document.activeElement)) { heading.tabIndex = -1; heading.focus({ preventScroll: true }); }
}

function teardown() {
  if (current && current.instance && current.instance.cleanup) current.instance.cleanup();
  current = null;
}

document.addEventListener("click", (ev) => {
  const a = ev.target.closest && ev.target.closest("a[href]");
  if (!a || a.target || a.hasAttribute("download") || ev.defaultPrevented) return;
  if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith("/ui")) return;
  ev.preventDefault();
  if (url.pathname + url.search !== location.pathname + location.search) navigate(url.pathname + url.search);
});

window.addEventListener("popstate", render);

window.addEventListener("ladle:unauthenticated", (ev) => {
  session.clear();
  sessionStorage.setItem("ladle.signin-reason", String(ev.detail && ev.detail.message || "Please sign in again."));
  if (!location.pathname.startsWith("/ui/signin")) navigate(signInPath(), { replace: true });
});

document.getElementById("signout").addEventListener("click", () => {
  session.clear();
  sessionStorage.setItem("ladle.signin-reason", "You are signed out.");
  navigate("/ui/signin", { replace: true });
});

if (location.pathname === "/" || location.pathname === "/ui") history.replaceState(null, "", "/ui/endpoints");
render();
