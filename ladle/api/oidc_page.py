"""The OAuth sign-in page (`/oidc/v1/authorize`): server-rendered HTML, styled by the UI's
stylesheet, no script. It takes a personal access token, as the UI's own sign-in does; the
authorization request travels in hidden fields."""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse

HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; style-src 'self'; img-src 'self'; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
FIELDS = ("response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge",
          "code_challenge_method")


def _page(body: str, status: int) -> HTMLResponse:
    html = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<title>Sign in - ladle</title><link rel=\"stylesheet\" href=\"/static/style.css\">"
            "<link rel=\"icon\" href=\"/static/favicon.svg\"></head><body>"
            f"<main class=\"signin panel\">{body}</main></body></html>")
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def sign_in(params: dict[str, str], client_id: str, error: str | None = None,
            status: int = 200) -> HTMLResponse:
    hidden = "".join(f'<input type="hidden" name="{k}" value="{escape(params[k])}">'
                     for k in FIELDS if k in params)
    err = f'<p class="field-error" role="alert">{escape(error)}</p>' if error else ""
    return _page(
        "<h1>Sign in to ladle</h1>"
        f"<p><b>{escape(client_id)}</b> asks to act as you on this server.</p>{err}"
        "<form method=\"post\" action=\"/oidc/v1/authorize\">"
        f"{hidden}<div class=\"field\"><label for=\"token\">Personal access token</label>"
        "<input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"off\" required autofocus>"
        "</div><button class=\"btn btn-primary\" type=\"submit\">Sign in</button></form>", status)


def refused(error: str, description: str) -> HTMLResponse:
    """An authorization request that cannot be honoured (it is not redirected anywhere)."""
    return _page(f"<h1>Cannot sign in</h1><p class=\"field-error\" role=\"alert\">{escape(error)}: "
                 f"{escape(description)}</p>", 400)
