// Create an endpoint or edit its config: served entities, traffic split (must total 100),
// the exact JSON sent shown live, and server errors shown next to the field they name.
import { ApiError, api, epPath, fieldOf, get } from "../api.js";
import { clearErrors, copyButton, field, h, pretty, replace, setFieldError, showAt } from "../dom.js";
import { entityCard, makeRegistry } from "../entity.js";

export function render(root, params, ctx) {
  const editing = params.page === "edit";
  const epName = params.name;
  ctx.title(editing ? `Edit ${epName}` : "Create endpoint");
  const registry = makeRegistry();
  const cards = [];
  const percents = new Map(); // card -> traffic percentage
  const initialRoutes = new Map(); // served entity name -> percentage (edit)
  let trafficKey = "";
  let alive = true;

  const nameInput = h("input", { type: "text", name: "name", autocomplete: "off", spellcheck: "false", placeholder: "my-endpoint" });
  const nameField = field("Endpoint name", nameInput, { field: "name", hint: "Letters, digits, '-' and '_'; the URL is /serving-endpoints/<name>/invocations" });
  const entitiesBox = h("div", {});
  const addBtn = h("button", { type: "button", class: "btn", onclick: () => addCard({}, true) }, "+ Add served entity");
  const trafficBody = h("tbody");
  const total = h("span", { class: "traffic-total", role: "status", "aria-live": "polite" });
  const trafficErr = h("div", { class: "field-error", role: "alert", hidden: true });
  const trafficBox = h("fieldset", { "data-field": "traffic_config" }, h("legend", {}, "Traffic split"), trafficErr,
    h("p", { class: "hint", style: { marginTop: 0 } }, "Share of requests to /invocations for each served entity. The percentages must add up to 100."),
    h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Served entity"), h("th", { scope: "col", class: "num" }, "Traffic %"))), trafficBody),
    h("p", {}, total));
  const formError = h("div", { class: "alert alert-error", role: "alert", hidden: true, id: "form-error" });
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, editing ? "Update endpoint" : "Create endpoint");
  const cancel = h("a", { class: "btn", href: editing ? `/ui/endpoints/${encodeURIComponent(epName)}` : "/ui/endpoints" }, "Cancel");
  const form = h("form", { novalidate: true, id: "endpoint-form", "aria-label": editing ? "Edit endpoint config" : "Create endpoint" },
    editing ? null : h("div", { class: "panel" }, nameField),
    h("div", { class: "panel" }, h("h2", {}, "Served entities"), entitiesBox, addBtn),
    h("div", { class: "panel" }, trafficBox),
    formError,
    h("div", { class: "form-actions" }, submit, cancel));
  const method = editing ? "PUT" : "POST";
  const path = editing ? `${epPath(epName)}/config` : "/api/2.0/serving-endpoints";
  const preview = h("pre", { class: "code", id: "request-json", tabindex: "0", "aria-label": "Request body" });
  const cli = () => editing ? `ladle serving-endpoints update-config ${epName} --json '${JSON.stringify(body())}'`
    : `ladle serving-endpoints create --json '${JSON.stringify(body())}'`;
  const side = h("aside", { class: "panel sticky", "aria-label": "Request preview" },
    h("div", { class: "code-head" }, h("h2", { style: { margin: 0 } }, "Request"),
      h("div", { class: "btn-group" }, copyButton("Copy JSON", () => pretty(body())), copyButton("Copy CLI command", cli))),
    h("p", { class: "mono small" }, `${method} ${path}`), preview);

  function routes() {
    return cards.map((c) => ({ served_entity_name: c.effectiveName(), traffic_percentage: Number(percents.get(c) ?? 0) }));
  }
  function body() {
    const config = { served_entities: cards.map((c) => c.toJSON()), traffic_config: { routes: routes() } };
    return editing ? config : { name: nameInput.value.trim(), config };
  }
  function sum() { return routes().reduce((a, r) => a + (Number.isFinite(r.traffic_percentage) ? r.traffic_percentage : 0), 0); }

  function paintTraffic() {
    const names = cards.map((c) => c.effectiveName());
    const key = names.join("\u0000") + `/${cards.length}`;
    if (key !== trafficKey) {
      trafficKey = key;
      if (cards.length === 1) percents.set(cards[0], 100);
      replace(trafficBody, names.map((n, i) => {
        const c = cards[i];
        const input = h("input", { type: "number", min: 0, max: 100, step: 1, value: String(percents.get(c) ?? 0), style: { width: "7rem", textAlign: "right" },
          "aria-label": `Traffic percentage for ${n || `served entity ${i + 1}`}`, "data-traffic-for": n });
        input.addEventListener("input", () => { percents.set(c, input.value === "" ? 0 : Number(input.value)); refresh(); });
        return h("tr", {}, h("td", { class: "mono" }, n || h("span", { class: "muted" }, `(served entity ${i + 1})`)), h("td", { class: "num" }, input));
      }));
    }
    const t = sum();
    total.textContent = t === 100 ? "Total: 100%" : `Total: ${t}% (must be 100%)`;
    total.className = `traffic-total ${t === 100 ? "ok" : "bad"}`;
  }

  function refresh() {
    if (!alive) return;
    paintTraffic();
    preview.textContent = pretty(body());
  }

  function addCard(initial, focus) {
    const card = entityCard(initial, registry, refresh, (c) => {
      cards.splice(cards.indexOf(c), 1);
      percents.delete(c);
      c.el.remove();
      reindex();
      refresh();
    });
    const from = initialRoutes.get(card.effectiveName());
    percents.set(card, from !== undefined ? Number(from) : Math.max(0, 100 - sum()));
    cards.push(card);
    entitiesBox.append(card.el);
    reindex();
    refresh();
    if (focus) card.focus();
    return card;
  }
  function reindex() { cards.forEach((c, i) => c.setIndex(i, cards.length)); }

  function showError(err) {
    const message = err instanceof ApiError ? err.toString() : String(err);
    const where = err instanceof ApiError ? fieldOf(err.message) : null;
    const path = where ? where.replace(/^config\./, "") : null;
    formError.replaceChildren(h("strong", {}, where ? `The server refused the ${where.split(".").pop()} field: ` : "The server refused the request: "), message);
    formError.hidden = false;
    if (!path || !showAt(form, path, message)) formError.focus?.();
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    setFieldError(trafficBox, "");
    formError.hidden = true;
    const problems = [];
    if (!editing && !nameInput.value.trim()) problems.push(["name", "Enter a name for the endpoint."]);
    cards.forEach((c, i) => c.problems().forEach(([f, m]) => problems.push([`served_entities.${i}.${f}`, m])));
    if (sum() !== 100) problems.push(["traffic_config", `Traffic percentages add up to ${sum()}%; they must add up to 100%.`]);
    if (problems.length) {
      problems.forEach(([f, m]) => { const w = [...form.querySelectorAll("[data-field]")].find((e) => e.dataset.field === f); if (w) setFieldError(w, m); });
      showAt(form, problems[0][0], problems[0][1]);
      return;
    }
    submit.disabled = true;
    try {
      const out = await api(method, path, { body: body() });
      ctx.navigate(`/ui/endpoints/${encodeURIComponent(out.name || epName || nameInput.value.trim())}`);
    } catch (e) {
      if (alive) showError(e);
    } finally {
      submit.disabled = false;
    }
  });

  const head = h("div", { class: "page-head" }, h("h1", {}, editing ? `Edit ${epName}` : "Create a serving endpoint"));
  const notice = h("div", { class: "alert alert-info", role: "status", hidden: true });
  root.append(head, notice, h("div", { class: "grid2" }, form, side));
  formError.tabIndex = -1;

  if (editing) {
    entitiesBox.append(h("p", { class: "muted" }, h("span", { class: "spinner" }), " Loading the endpoint…"));
    get(epPath(epName)).then((ep) => {
      if (!alive) return;
      entitiesBox.replaceChildren();
      const cfg = ep.pending_config || ep.config || { served_entities: [] };
      for (const r of (cfg.traffic_config && cfg.traffic_config.routes) || []) initialRoutes.set(r.served_entity_name || r.served_model_name, r.traffic_percentage);
      (cfg.served_entities || []).forEach((e) => addCard(e, false));
      if (!cards.length) addCard({}, false);
      if (ep.state && ep.state.config_update === "IN_PROGRESS") {
        notice.textContent = "An update is in progress. You can save once it has finished.";
        notice.hidden = false;
      }
    }).catch((e) => { entitiesBox.replaceChildren(); showError(e); });
  } else {
    addCard({}, false);
    nameInput.addEventListener("input", refresh);
    nameInput.focus();
  }
  return { cleanup() { alive = false; } };
}
