"""The UI's shell and assets as served by ladle (no browser needed): public paths, deep
links, caching, path safety, and that every module the app imports is present."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.applications import Starlette
from starlette.testclient import TestClient

from ladle.gateway.auth import AuthMiddleware
from ladle.web.pages import STATIC_DIR, routes


async def _nobody(token: str) -> None:
    return None


def _client() -> TestClient:
    app = AuthMiddleware(Starlette(routes=routes()), _nobody)
    return TestClient(app, follow_redirects=False)


def test_root_redirects_to_the_ui_without_a_token():
    r = _client().get("/")
    assert r.status_code == 307 and r.headers["location"] == "/ui/endpoints"


def test_deep_links_serve_the_shell_with_a_strict_csp():
    c = _client()
    for path in ("/ui", "/ui/endpoints", "/ui/endpoints/iris/query", "/ui/usage", "/ui/me",
                 "/ui/admin/groups", "/ui/apps", "/ui/apps/my-app"):
        r = c.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/static/app.js">' in r.text
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_assets_are_public_typed_and_revalidated():
    c = _client()
    r = c.get("/static/app.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert r.headers["cache-control"] == "no-cache"
    again = c.get("/static/app.js", headers={"if-none-match": r.headers["etag"]})
    assert again.status_code == 304
    assert c.get("/static/style.css").headers["content-type"].startswith("text/css")
    assert c.get("/favicon.ico").headers["content-type"] == "image/svg+xml"


def test_no_path_escapes_the_static_dir():
    c = _client()
    for path in ("/static/../pages.py", "/static/%2e%2e/pages.py", "/static/nope.js", "/static/pages"):
        r = c.get(path)
        assert r.status_code in (401, 404) and "def routes" not in r.text, path


def test_the_api_still_needs_a_token():
    assert _client().get("/api/2.0/serving-endpoints").status_code == 401


def test_every_imported_module_exists_and_nothing_comes_from_elsewhere():
    js = list(STATIC_DIR.rglob("*.js"))
    assert js
    for f in js:
        text = f.read_text()
        static = re.findall(r"""^\s*(?:import|export)\b[^;]*?from\s*["']([^"']+)["']""", text, re.M)
        for spec in static + re.findall(r"""\bimport\(\s*["']([^"']+)["']""", text):
            assert spec.startswith("."), f"{f.name} imports {spec}: only relative modules are served"
            assert (f.parent / spec).resolve().is_file(), f"{f.name} imports missing {spec}"
        assert "innerHTML" not in text, f"{f.name}: build DOM with dom.h(), never innerHTML"
        assert not re.search(r"https?://(?!127\.0\.0\.1|www\.w3\.org)", text), f"{f.name} references a remote URL"


def test_static_files_are_package_data():
    assert (STATIC_DIR / "index.html").is_file()
    assert Path(__file__).resolve().parents[2].joinpath("ladle/web/static") == STATIC_DIR.resolve()
