"""Browser tier: real headless Chromium (Debian's package, driven by Playwright; no browser is
ever downloaded) against a real `ladle server` subprocess with the iris model registered.

Everything expensive is session-scoped (the server, the browser); each test gets its own
browser context (`page`). Screenshots go to $LADLE_WEB_SCREENSHOTS or a temp dir
whose path is printed."""

from __future__ import annotations

import os
import secrets
import threading
import time
from pathlib import Path

import pytest

from ladle.testing.process import LadleProcess

from web_support import (EP, iris, make_endpoint, sign_in, CHROMIUM, CHROMIUM_ARGS, FakeChatUpstream, ensure_chromium, prewarm_mlflow,
                         register_iris, web_server)


@pytest.fixture(scope="session")
def chromium() -> str:
    pytest.importorskip("playwright", reason="the 'playwright' package (test extra) is not installed")
    reason = ensure_chromium()
    if reason:
        pytest.skip(f"no Chromium for the browser tests: {reason}")
    return CHROMIUM


@pytest.fixture(scope="session")
def ladle(tmp_path_factory: pytest.TempPathFactory, chromium: str):
    srv = web_server(tmp_path_factory.mktemp("ladle-web-home"), "dapi-web-" + secrets.token_hex(8))
    warm = threading.Thread(target=prewarm_mlflow, args=(tmp_path_factory.mktemp("warm"),), daemon=True)
    warm.start()
    t0 = time.monotonic()
    srv.start()
    t1 = time.monotonic()
    try:
        warm.join()
        register_iris(srv, versions=2)
        print(f"\nladle server ready in {t1 - t0:.0f}s, iris registered in {time.monotonic() - t1:.0f}s")
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def fake_llm():
    with FakeChatUpstream() as up:
        yield up


@pytest.fixture(scope="session")
def browser(chromium: str, ladle: LadleProcess):
    # Started after the server and the MLflow registration: MLflow's client must not run
    # inside Playwright's event loop.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(ladle: LadleProcess, browser):
    """A page in a browser context of its own (no cookies, storage or history from another
    test); fails the test on any JavaScript error in the page."""
    ctx = browser.new_context(viewport={"width": 1366, "height": 860}, base_url=ladle.url)
    pg = ctx.new_page()
    pg.set_default_timeout(20_000)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = Path(os.environ.get("LADLE_WEB_SCREENSHOTS") or tmp_path_factory.mktemp("web-shots"))
    d.mkdir(parents=True, exist_ok=True)
    print(f"\nweb UI screenshots: {d}")
    return d


@pytest.fixture(scope="module")
def api(ladle: LadleProcess):
    with ladle.client() as c:
        yield c


@pytest.fixture(scope="module")
def iris_ui(api):
    """`iris-ui`: iris version 1 (served entity `iris-1`), READY."""
    yield make_endpoint(api, EP, [iris("1")])
    api.delete(f"/api/2.0/serving-endpoints/{EP}")


@pytest.fixture()
def admin_page(page, ladle: LadleProcess):
    """A fresh browser context signed in as the admin."""
    sign_in(page, ladle.admin_token)
    return page
