"""The browser sign-in in front of an app (`/apps/<name>/.ladle/sign-in`): a server-rendered
page taking a personal access token, as the UI's and the OAuth sign-in pages do, and the
session cookie it sets: an HttpOnly cookie scoped to the app's path, holding a JWT that names
the user and the app. The JWT carries an empty endpoint scope, so the bearer-token gateway
refuses it on every API route: it opens this app's proxy only."""

from __future__ import annotations

from html import escape
from urllib.parse import urlencode

from starlette.responses import HTMLResponse, RedirectResponse, Response

from ladle.api.oidc_page import HEADERS

COOKIE = "ladle_app_session"
SESSION_TTL_S = 8 * 3600
SIGN_IN = ".ladle/sign-in"


def prefix(name: str) -> str:
    return f"/apps/{name}/"


def sign_in_url(name: str, next_path: str) -> str:
    return prefix(name) + SIGN_IN + "?" + urlencode({"next": next_path})


def safe_next(name: str, next_path: str | None) -> str:
    """Where to go after signing in: a path inside this app, nothing else (no open redirect)."""
    p = next_path or ""
    if not p.startswith(prefix(name)) or "\\" in p or "//" in p or any(ord(c) < 32 for c in p):
        return prefix(name)
    return p


def page(name: str, next_path: str, error: str | None = None, status: int = 200) -> HTMLResponse:
    err = f'<p class="field-error" role="alert">{escape(error)}</p>' if error else ""
    html = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<title>Sign in - ladle</title><link rel=\"stylesheet\" href=\"/static/style.css\">"
            "<link rel=\"icon\" href=\"/static/favicon.svg\"></head><body>"
            "<main class=\"signin panel\"><h1>Sign in to ladle</h1>"
            f"<p>to open the app <b>{escape(name)}</b>.</p>{err}"
            f"<form method=\"post\" action=\"{escape(prefix(name) + SIGN_IN)}\">"
            f"<input type=\"hidden\" name=\"next\" value=\"{escape(next_path)}\">"
            "<div class=\"field\"><label for=\"token\">Personal access token</label>"
            "<input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"off\" required autofocus>"
            "</div><button class=\"btn btn-primary\" type=\"submit\">Sign in</button></form></main></body></html>")
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def signed_in(name: str, next_path: str, session: str, secure: bool) -> Response:
    r = RedirectResponse(next_path, status_code=303, headers={"Cache-Control": "no-store"})
    r.set_cookie(COOKIE, session, max_age=SESSION_TTL_S, path=prefix(name), httponly=True, secure=secure,
                 samesite="lax")
    return r
