// Agent playground for agent/v1/responses endpoints (MLflow ResponsesAgent): speaks the
// Responses API (POST /serving-endpoints/responses, `model` = the endpoint), streamed if asked,
// keeps the conversation as Responses input items, and shows the request's trace after each
// answer (trace_view.js).
import { ApiError, send } from "./api.js";
import { field, h, replace } from "./dom.js";
import { sseEvents } from "./chat.js";
import { newTrace, showTrace } from "./trace_view.js";

const textOf = (resp) => (resp.output || []).filter((o) => o.type === "message")
  .flatMap((o) => o.content || []).filter((c) => c.type === "output_text").map((c) => c.text).join("");

export function mountAgent(panel, ctx, snippetBox) {
  const items = [];
  const log = h("div", { class: "chat-log", id: "chat-log", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
  const instructions = h("textarea", { rows: 2, placeholder: "Instructions (optional)" });
  const stream = h("input", { type: "checkbox" });   // off: every agent has predict, not all predict_stream
  const input = h("textarea", { id: "chat-input", rows: 2, placeholder: "Ask the agent (Enter sends, Shift+Enter for a new line)" });
  const sendBtn = h("button", { type: "submit", class: "btn btn-primary" }, "Send");
  const clearBtn = h("button", { type: "button", class: "btn btn-ghost" }, "Clear");
  const meta = h("div", { class: "response-meta", id: "chat-usage", "aria-live": "polite" });
  const trace = h("div", { id: "trace", "aria-live": "polite" }, h("span", { class: "muted" }, "Send a request to see its trace."));
  let busy = false;
  let alive = true;

  function body(extra) {
    const b = { model: ctx.name, input: [...items, ...(extra ? [{ role: "user", content: extra }] : [])] };
    if (!b.input.length) b.input = [{ role: "user", content: "Hello!" }];
    if (instructions.value.trim()) b.instructions = instructions.value.trim();
    if (stream.checked) b.stream = true;
    return b;
  }
  const bubble = (role, text) => h("div", { class: `msg msg-${role}` }, h("span", { class: "msg-role" }, role), h("span", { class: "msg-text" }, text));

  async function run(ev) {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text || busy) return;
    const req = body(text);
    items.push({ role: "user", content: text });
    input.value = "";
    log.append(bubble("user", text));
    const reply = bubble("assistant", "");
    const replyText = reply.querySelector(".msg-text");
    log.append(reply);
    busy = true;
    sendBtn.disabled = true;
    const { traceparent, traceId } = newTrace();
    const t0 = performance.now();
    let content = "";
    try {
      const resp = await send("POST", "/serving-endpoints/responses", { body: req, headers: { traceparent } });
      if ((resp.headers.get("content-type") || "").includes("text/event-stream")) {
        for await (const e of sseEvents(resp)) {
          if (e.type === "response.output_text.delta") { content += e.delta || ""; replyText.textContent = content; }
          else if (e.type === "response.completed" && e.response && !content) { content = textOf(e.response); replyText.textContent = content; }
          else if (e.type === "error") throw new ApiError(0, e.code || "error", e.message || "the stream failed");
        }
      } else {
        content = textOf(await resp.json());
        replyText.textContent = content;
      }
      items.push({ role: "assistant", content });
      const served = resp.headers.get("served-model-name");
      replace(meta, served ? h("span", { class: "chip" }, "served-model-name: ", h("b", {}, served)) : "",
        h("span", { class: "muted small" }, `${Math.round(performance.now() - t0)} ms`));
    } catch (e) {
      reply.className = "msg msg-error";
      replyText.textContent = e instanceof ApiError ? e.toString() : String(e);
      items.pop();
    } finally {
      busy = false;
      sendBtn.disabled = false;
      input.focus();
      showTrace(trace, traceId, () => alive);            // a failed request has a trace too
    }
  }

  input.addEventListener("keydown", (ev) => { if (ev.key === "Enter" && !ev.shiftKey) run(ev); });
  clearBtn.addEventListener("click", () => { items.length = 0; log.replaceChildren(); meta.replaceChildren(); input.focus(); });
  const form = h("form", { class: "chat-input", "aria-label": "Message to the agent" },
    h("label", { for: "chat-input", class: "visually-hidden" }, "Message"), input, sendBtn);
  form.addEventListener("submit", run);
  const settings = h("details", { class: "panel" }, h("summary", {}, "Settings"),
    field("Instructions", instructions), field("Stream the answer as it comes", stream, { inline: true }));
  const request = () => ({ name: ctx.name, served: null, task: "agent/v1/responses", path: "/serving-endpoints/responses", body: body(input.value.trim() || null) });
  panel.append(h("div", { class: "grid2" },
    h("div", { class: "panel" }, h("div", { class: "code-head" }, h("h2", { style: { margin: 0 } }, "Agent (Responses API)"), h("div", { class: "btn-group" }, clearBtn)),
      log, form, meta),
    h("div", {}, h("div", { class: "panel" }, h("h2", {}, "Trace"), trace), settings, snippetBox(request))));
  return { cleanup() { alive = false; } };
}
