// Chat playground for llm/v1/chat endpoints: streams tokens over SSE from
// POST /serving-endpoints/{name}/invocations with "stream": true, and shows token usage.
import { ApiError, enc, send } from "./api.js";
import { field, h } from "./dom.js";

// Split an SSE byte stream into the JSON payloads of its "data:" lines.
export async function* sseEvents(resp) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    buf += done ? decoder.decode() : decoder.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i).replace(/\r$/, "");
      buf = buf.slice(i + 1);
      if (!line.startsWith("data:")) continue;
      const data = line.slice(5).trim();
      if (data === "[DONE]") return;
      if (data) yield JSON.parse(data);
    }
    if (done) return;
  }
}

export function mountChat(panel, ctx, snippetBox) {
  const messages = [];
  const log = h("div", { class: "chat-log", id: "chat-log", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
  const system = h("textarea", { rows: 2, placeholder: "You are a helpful assistant." });
  const maxTokens = h("input", { type: "number", min: 1, value: 256 });
  const temperature = h("input", { type: "number", min: 0, max: 2, step: 0.1, value: 0.7 });
  const stream = h("input", { type: "checkbox", checked: true });
  const input = h("textarea", { id: "chat-input", rows: 2, placeholder: "Send a message (Enter sends, Shift+Enter for a new line)" });
  const sendBtn = h("button", { type: "submit", class: "btn btn-primary" }, "Send");
  const stopBtn = h("button", { type: "button", class: "btn", hidden: true }, "Stop");
  const clearBtn = h("button", { type: "button", class: "btn btn-ghost" }, "Clear");
  const usage = h("div", { class: "response-meta", id: "chat-usage", "aria-live": "polite" });
  let abort = null;

  function body(extra) {
    const msgs = [];
    if (system.value.trim()) msgs.push({ role: "system", content: system.value.trim() });
    msgs.push(...messages, ...(extra ? [{ role: "user", content: extra }] : []));
    const b = { messages: msgs.length ? msgs : [{ role: "user", content: "Hello!" }] };
    if (maxTokens.value) b.max_tokens = Number(maxTokens.value);
    if (temperature.value !== "") b.temperature = Number(temperature.value);
    if (stream.checked) b.stream = true;
    return b;
  }
  const bubble = (role, text) => h("div", { class: `msg msg-${role}` }, h("span", { class: "msg-role" }, role), h("span", { class: "msg-text" }, text));
  function showUsage(u, served, ms) {
    usage.replaceChildren(
      served ? h("span", { class: "chip" }, "served-model-name: ", h("b", {}, served)) : null,
      u ? h("span", { class: "chip", id: "usage-tokens" }, `prompt ${u.prompt_tokens ?? "?"} · completion ${u.completion_tokens ?? "?"} · total ${u.total_tokens ?? "?"} tokens`)
        : h("span", { class: "muted small" }, "The endpoint reported no token usage."),
      h("span", { class: "muted small" }, `${ms} ms`));
  }

  async function run(ev) {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text || abort) return;
    const req = body(text);
    messages.push({ role: "user", content: text });
    input.value = "";
    log.append(bubble("user", text));
    const reply = bubble("assistant", "");
    const replyText = reply.querySelector(".msg-text");
    log.append(reply);
    log.scrollTop = log.scrollHeight;
    abort = new AbortController();
    sendBtn.disabled = true;
    stopBtn.hidden = false;
    const t0 = performance.now();
    let content = "";
    let u = null;
    try {
      const resp = await send("POST", `/serving-endpoints/${enc(ctx.name)}/invocations`, { body: req, signal: abort.signal });
      const served = resp.headers.get("served-model-name");
      if ((resp.headers.get("content-type") || "").includes("text/event-stream")) {
        for await (const chunk of sseEvents(resp)) {
          const c = chunk.choices && chunk.choices[0];
          const piece = c && (c.delta ? c.delta.content : c.text);
          if (piece) { content += piece; replyText.textContent = content; log.scrollTop = log.scrollHeight; }
          if (chunk.usage) u = chunk.usage;
        }
      } else {
        const data = await resp.json();
        const c = data.choices && data.choices[0];
        content = (c && (c.message ? c.message.content : c.text)) || "";
        replyText.textContent = content;
        u = data.usage || null;
      }
      messages.push({ role: "assistant", content });
      showUsage(u, served, Math.round(performance.now() - t0));
    } catch (e) {
      if (e.name === "AbortError") { messages.push({ role: "assistant", content }); replyText.textContent = `${content} [stopped]`; } else {
        reply.className = "msg msg-error";
        replyText.textContent = e instanceof ApiError ? e.toString() : String(e);
        messages.pop();
      }
    } finally {
      abort = null;
      sendBtn.disabled = false;
      stopBtn.hidden = true;
      input.focus();
    }
  }

  input.addEventListener("keydown", (ev) => { if (ev.key === "Enter" && !ev.shiftKey) run(ev); });
  stopBtn.addEventListener("click", () => abort && abort.abort());
  clearBtn.addEventListener("click", () => { messages.length = 0; log.replaceChildren(); usage.replaceChildren(); input.focus(); });
  const form = h("form", { class: "chat-input", "aria-label": "Chat message" },
    h("label", { for: "chat-input", class: "visually-hidden" }, "Message"), input, sendBtn, stopBtn);
  form.addEventListener("submit", run);
  const settings = h("details", { class: "panel" }, h("summary", {}, "Settings"),
    field("System prompt", system), h("div", { class: "row" }, field("Max tokens", maxTokens), field("Temperature", temperature)),
    field("Stream tokens as they arrive", stream, { inline: true }));
  const request = () => ({ name: ctx.name, served: null, task: "llm/v1/chat", path: `/serving-endpoints/${ctx.name}/invocations`, body: body(input.value.trim() || null) });
  panel.append(h("div", { class: "grid2" },
    h("div", { class: "panel" }, h("div", { class: "code-head" }, h("h2", { style: { margin: 0 } }, "Chat"), h("div", { class: "btn-group" }, clearBtn)),
      log, form, usage),
    h("div", {}, settings, snippetBox(request))));
  return { cleanup() { if (abort) abort.abort(); } };
}
