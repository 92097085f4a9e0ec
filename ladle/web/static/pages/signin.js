// Sign in with a personal access token; the token lives in sessionStorage for this tab only.
import { ApiError, get, session } from "../api.js";
import { field, h, setFieldError } from "../dom.js";

export function render(root, params, ctx) {
  ctx.title("Sign in");
  // Kept until a sign-in succeeds: the page may render twice (a 401 from each of the left
  // page's requests), and the second render must still say why.
  const reason = sessionStorage.getItem("ladle.signin-reason");
  const input = h("input", { type: "password", name: "token", autocomplete: "current-password", required: true, spellcheck: "false" });
  const tokenField = field("Access token", input, {
    field: "token",
    hint: h("span", {}, "A ladle token: the admin token from ", h("code", {}, "LADLE_ADMIN_TOKEN"),
      " or the server's token file, or one made with ", h("code", {}, "ladle tokens create --user NAME"),
      ". It is kept in this browser tab only."),
  });
  const button = h("button", { type: "submit", class: "btn btn-primary" }, "Sign in");
  const form = h("form", { class: "panel", novalidate: true }, tokenField, h("div", { class: "form-actions" }, button));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const token = input.value.trim();
    if (!token) { setFieldError(tokenField, "Enter a token."); input.focus(); return; }
    button.disabled = true;
    session.set(token);
    try {
      await get("/api/2.0/serving-endpoints");
      sessionStorage.removeItem("ladle.signin-reason");
      const next = new URLSearchParams(location.search).get("next");
      ctx.navigate(next && next.startsWith("/ui/") && !next.startsWith("/ui/signin") ? next : "/ui/endpoints", { replace: true });
    } catch (e) {
      session.clear();
      sessionStorage.removeItem("ladle.signin-reason");
      setFieldError(tokenField, e instanceof ApiError ? e.toString() : String(e));
      button.disabled = false;
      input.focus();
    }
  });
  root.append(h("div", { class: "signin" },
    h("h1", {}, "Sign in to ladle"),
    h("p", { class: "muted" }, "Serving endpoints for your models, on your machine."),
    reason ? h("div", { class: "alert alert-info", role: "status" }, reason) : null,
    form));
  input.focus();
  return null;
}
