"""A stand-in browser for OAuth sign-in tests (run as `BROWSER`, given the authorize URL):
it loads ladle's sign-in page, posts the personal access token from $LADLE_SIGNIN_TOKEN with
the page's hidden fields, and follows the redirect to the client's loopback listener
(retrying while that listener is not up yet)."""

from __future__ import annotations

import os
import sys
import time
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.action = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.action = a.get("action") or ""
        if tag == "input" and a.get("type") == "hidden" and a.get("name"):
            self.fields[a["name"]] = a.get("value") or ""


def main(url: str) -> None:
    with httpx.Client(timeout=30) as http:
        page = http.get(url)
        page.raise_for_status()
        form = _Form()
        form.feed(page.text)
        r = http.post(urljoin(url, form.action), data={**form.fields, "token": os.environ["LADLE_SIGNIN_TOKEN"]})
        if r.status_code != 302:
            raise SystemExit(f"sign-in refused: {r.status_code} {r.text[:300]}")
        # The SDK's listener binds localhost's IPv4 address; a browser tries each address of
        # `localhost`, httpx only the first (which may be ::1).
        location = r.headers["location"].replace("://localhost:", "://127.0.0.1:", 1)
        deadline = time.monotonic() + 30
        while True:
            try:
                http.get(location)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


if __name__ == "__main__":
    main(sys.argv[1])
