"""The endpoint page's Metrics, Logs and Permissions tabs, the replicas chart and scaling note,
and the Usage page, in a real browser against one real server (the fixtures and the way each
test signs in are test_web_ui.py's: tests/web/conftest.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ladle.testing.waiting import wait_until

from web_support import BODY, EP, shot

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]


def test_metrics_logs_permissions(admin_page, api, iris_ui, shots: Path):
    from playwright.sync_api import expect

    page = admin_page
    assert api.post(f"/serving-endpoints/{EP}/invocations", json=BODY).status_code == 200
    wait_until(lambda: api.get(f"/api/2.0/ladle/serving-endpoints/{EP}/metrics-history").json()["samples"],
               30, 0.25, what="the server to keep a sample of the query")
    page.goto(f"/ui/endpoints/{EP}/metrics")
    note = page.locator("#tab-panel p.hint")
    expect(note).to_contain_text("(1 sample)")
    expect(note).to_contain_text(re.compile(r"[1-9]\d* kept by the server"))   # the earlier query is there
    for _ in range(8):  # traffic between two browser samples becomes a rate and quantiles
        assert api.post(f"/serving-endpoints/{EP}/invocations", json=BODY).status_code == 200
    expect(note).to_contain_text("(2 samples)", timeout=15_000)
    expect(page.locator(".stats")).to_contain_text(re.compile(r"Requests\s*([1-9]\d*)"))
    charts = page.locator("svg.chart")
    expect(charts).to_have_count(4)
    for i in (0, 2):  # requests/s and latency have a drawn line
        expect(charts.nth(i).locator("path[d^='M']").first).to_be_attached()
    latest = re.search(r"requests/s ([0-9.]+)", charts.nth(0).get_attribute("aria-label") or "")
    assert latest and float(latest.group(1)) > 0
    expect(page.locator("#metrics-entity option")).to_have_text(["All served entities", "iris-1"])
    shot(page, shots, "10-metrics")

    page.get_by_role("tab", name="Logs").click()
    page.get_by_role("radio", name="Build logs").check()
    expect(page.locator("#logs")).not_to_be_empty()
    expect(page.locator("#logs")).not_to_have_text("(no log lines yet)")
    shot(page, shots, "11-logs")

    page.get_by_role("tab", name="Permissions").click()
    perms = page.locator("#permissions")
    expect(perms).to_contain_text("admins")
    page.get_by_label("Name", exact=True).fill("alice@example.com")
    page.get_by_label("Permission", exact=True).select_option("CAN_QUERY")
    page.get_by_role("button", name="Add", exact=True).click()
    page.get_by_role("button", name="Save permissions").click()
    expect(page.get_by_role("status").filter(has_text="Saved at")).to_be_visible()
    page.reload()
    expect(page.locator("#permissions tr", has_text="alice@example.com")).to_contain_text("User")
    expect(page.get_by_label("Permission for alice@example.com")).to_have_value("CAN_QUERY")
    shot(page, shots, "12-permissions")


def test_replicas_beside_the_load_and_the_scaling_note(admin_page, api, iris_ui, shots: Path):
    """The metrics tab charts replicas, the autoscaler's target and the load; while the
    autoscaler's last decision is under way (the entity's state message, set by the
    reconciler) the endpoint page says it, and drops it once the replicas got there."""
    from playwright.sync_api import expect

    page = admin_page
    note = "scaling up: 1 -> 3 replicas (in-flight 11.0 per replica over 10 s (target 3))"

    def scaling(route):   # the GET as the server answers it, while a scale-up is under way
        ep = route.fetch().json()
        ep["config"]["served_entities"][0]["state"]["deployment_state_message"] = note
        route.fulfill(json=ep)

    url = re.compile(rf".*/api/2\.0/serving-endpoints/{EP}$")
    page.route(url, scaling)
    page.goto(f"/ui/endpoints/{EP}/metrics")
    banner = page.locator("#ep-scaling")
    expect(banner).to_have_text("iris-1: scaling up: 1 \u2192 3 (in-flight 11.0 per replica over 10 s (target 3))")
    expect(banner).to_have_attribute("role", "status")
    shot(page, shots, "10b-scaling")
    page.unroute(url)
    expect(banner).to_be_hidden(timeout=10_000)   # polled every 2 s while it shows
    chart = page.locator("svg.chart").nth(3)
    expect(chart).to_have_attribute("aria-label", re.compile(
        r"^Replicas and load: replicas 1, target 1, in flight \+ queued \d+$"), timeout=15_000)
    expect(chart.locator("path[d^='M']")).to_have_count(3)


def test_usage_page(admin_page, api, iris_ui, shots: Path):
    from playwright.sync_api import expect

    page = admin_page
    r = api.put(f"/api/2.0/serving-endpoints/{EP}/ai-gateway", json={"usage_tracking_config": {"enabled": True}})
    assert r.status_code == 200, r.text
    assert api.post(f"/serving-endpoints/{EP}/invocations", json=BODY).status_code == 200
    page.get_by_role("link", name="Usage").click()
    expect(page.get_by_role("heading", name="Usage", exact=True)).to_be_visible()
    expect(page.locator("#usage-by-endpoint")).to_contain_text(EP, timeout=30_000)
    expect(page.locator("#usage-by-requester")).to_be_visible()
    shot(page, shots, "13-usage")
