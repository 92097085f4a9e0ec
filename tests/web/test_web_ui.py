"""The Serving UI in a real browser against one real server: sign in, create an endpoint from
the form and watch it become READY, query it, split traffic across two versions, save AI
gateway settings, see the server's 400 in place, chat with a streaming LLM endpoint, read
delete, sign out (the endpoint's metrics, logs, permissions and usage:
test_web_endpoint_metrics.py).

Each test opens its own browser context (one browser per session) and signs in itself; the
endpoints it needs come from fixtures made over the API, so every test passes alone and in
any order. Each one saves a screenshot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ladle.testing.process import LadleProcess

from web_support import (EP, FAKE_REPLY, FAKE_USAGE, IRIS, READY_S, external, field, iris, make_endpoint,
                         shot)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]
CHAT = "chat-ui"
READY = re.compile(r"^Ready$")
UPDATING = re.compile(r"^Updating$")


def test_sign_in(page, ladle: LadleProcess, shots: Path):
    from playwright.sync_api import expect

    page.goto("/")
    expect(page).to_have_url(re.compile(r"/ui/signin"))
    page.get_by_label("Access token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(field(page, "token").locator(".field-error")).to_contain_text("UNAUTHENTICATED")
    shot(page, shots, "01-signin-error")
    page.get_by_label("Access token").fill(ladle.admin_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/ui/endpoints$"))
    expect(page.get_by_role("heading", name="Serving endpoints")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('ladle.token')") == ladle.admin_token
    assert page.evaluate("localStorage.length") == 0


def test_create_endpoint_from_form_and_watch_it_become_ready(admin_page, api, shots: Path):
    from playwright.sync_api import expect

    page, name = admin_page, "iris-form"
    page.get_by_role("link", name="Create endpoint").click()
    page.get_by_label("Endpoint name").fill(name)
    page.locator('[data-field="served_entities.0.entity_name"] select').select_option(IRIS)
    version = page.locator('[data-field="served_entities.0.entity_version"] select')
    expect(version.locator('option[value="2"]')).to_be_attached()
    version.select_option("1")
    page.get_by_label("Scale to zero when idle").check()
    preview = page.locator("#request-json")
    expect(preview).to_contain_text('"entity_version": "1"')
    expect(preview).to_contain_text('"served_entity_name": "iris-1"')
    expect(page.locator(".traffic-total")).to_have_text("Total: 100%")
    shot(page, shots, "02-create-form")
    try:
        page.get_by_role("button", name="Create endpoint").click()
        expect(page).to_have_url(re.compile(rf"/ui/endpoints/{name}$"))
        ep = api.get(f"/api/2.0/serving-endpoints/{name}").json()     # config once READY, pending before
        [stored] = (ep.get("config") or ep["pending_config"])["served_entities"]
        assert (stored["entity_name"], stored["entity_version"], stored["scale_to_zero_enabled"]) == (IRIS, "1", True)
        head = page.locator(".page-head")
        expect(head.locator(".badge", has_text=READY)).to_be_visible(timeout=READY_S)
        expect(head.locator(".badge", has_text=UPDATING)).to_have_count(0, timeout=30_000)
        expect(page.locator('#served-entities [data-entity="iris-1"]')).to_contain_text("Ready")
        shot(page, shots, "03-endpoint-ready")
    finally:
        api.delete(f"/api/2.0/serving-endpoints/{name}")


def test_endpoint_page_tags_keyboard_tabs_and_list(admin_page, iris_ui, shots: Path):
    from playwright.sync_api import expect

    page = admin_page
    page.goto(f"/ui/endpoints/{EP}")
    expect(page.locator(".page-head .badge", has_text=READY)).to_be_visible()
    expect(page.locator('#served-entities [data-entity="iris-1"]')).to_contain_text("Ready")
    expect(page.locator('#served-entities [data-entity="iris-1"]')).to_contain_text("100%")
    page.get_by_label("Tag key").fill("team")
    page.get_by_label("Value", exact=True).fill("ml")
    page.get_by_role("button", name="Add tag").click()
    expect(page.locator("#tags")).to_contain_text("team: ml")
    tab = page.get_by_role("tab", name="Overview")  # tabs work from the keyboard
    tab.focus()
    tab.press("ArrowRight")
    expect(page.get_by_role("tab", name="Query")).to_have_attribute("aria-selected", "true")
    expect(page).to_have_url(re.compile(rf"/ui/endpoints/{EP}/query$"))
    page.get_by_role("link", name="Serving endpoints").click()
    row = page.locator(f'#endpoints-table tr[data-endpoint="{EP}"]')
    expect(row).to_contain_text("Ready")
    expect(row).to_contain_text(f"{IRIS} v1")
    page.get_by_placeholder("Filter by name").fill("nothing-matches")
    expect(row).to_have_count(0)
    page.get_by_placeholder("Filter by name").fill("iris")
    expect(row).to_be_visible()
    shot(page, shots, "03b-endpoints-list")
    row.get_by_role("link", name=EP).click()
    expect(page).to_have_url(re.compile(rf"/ui/endpoints/{EP}$"))


def test_query_playground(admin_page, iris_ui, shots: Path):
    from playwright.sync_api import expect

    page = admin_page
    page.goto(f"/ui/endpoints/{EP}")
    page.get_by_role("tab", name="Query").click()
    expect(page).to_have_url(re.compile(rf"/ui/endpoints/{EP}/query$"))
    editor = page.locator("#query-body")
    expect(editor).to_have_value(re.compile(r"dataframe_split[\s\S]*sepal length \(cm\)"))
    page.get_by_role("button", name="Send request").click()
    expect(page.locator("#response")).to_contain_text('"predictions"')
    expect(page.locator("#served-model")).to_contain_text("iris-1")
    page.get_by_role("button", name="curl").click()
    expect(page.locator("#snippet")).to_contain_text(f"/serving-endpoints/{EP}/invocations")
    page.get_by_role("button", name="Python (databricks-sdk)").click()
    expect(page.locator("#snippet")).to_contain_text("w.serving_endpoints.query(")
    page.get_by_role("button", name="openai").click()
    expect(page.locator("#snippet")).to_contain_text("base_url=")
    editor.fill("{not json")
    page.get_by_role("button", name="Send request").click()
    expect(page.locator("#query-body-err")).to_contain_text("Not valid JSON")
    page.get_by_role("button", name="Reset example").click()
    page.get_by_role("button", name="Send request").click()
    expect(page.locator("#response")).to_contain_text('"predictions"')
    shot(page, shots, "04-query")


@pytest.fixture()
def split_ep(api):
    """`iris-split`: iris version 1 alone, READY; deleted afterwards."""
    yield make_endpoint(api, "iris-split", [iris("1")])["name"]
    api.delete("/api/2.0/serving-endpoints/iris-split")


def test_edit_traffic_split(admin_page, split_ep, shots: Path):
    from playwright.sync_api import expect

    page, name = admin_page, split_ep
    page.goto(f"/ui/endpoints/{name}")
    page.get_by_role("link", name="Edit config").click()
    expect(page.get_by_role("heading", name=f"Edit {name}")).to_be_visible()
    page.get_by_role("button", name="+ Add served entity").click()
    page.locator('[data-field="served_entities.1.entity_name"] select').select_option(IRIS)
    expect(page.locator('[data-field="served_entities.1.entity_version"] select')).to_have_value("2")
    first = page.get_by_label("Traffic percentage for iris-1")
    second = page.get_by_label("Traffic percentage for iris-2")
    first.fill("40")
    second.fill("50")
    expect(page.locator(".traffic-total")).to_have_text("Total: 90% (must be 100%)")
    page.get_by_role("button", name="Update endpoint").click()  # refused before sending
    expect(page.locator('[data-field="traffic_config"] > .field-error')).to_contain_text("must add up to 100%")
    shot(page, shots, "05-traffic-client-check")
    first.fill("50")
    expect(page.locator(".traffic-total")).to_have_text("Total: 100%")
    expect(page.locator("#request-json")).to_contain_text('"served_entity_name": "iris-2"')
    page.get_by_role("button", name="Update endpoint").click()
    expect(page).to_have_url(re.compile(rf"/ui/endpoints/{name}$"))
    pending = page.locator("#pending-update")
    expect(pending).to_contain_text("Update in progress: config version 2")
    expect(pending.get_by_role("progressbar")).to_be_visible()
    shot(page, shots, "05b-update-in-progress")
    table = page.locator("#served-entities")
    expect(table.locator('[data-entity="iris-2"]')).to_contain_text("50%", timeout=READY_S)
    expect(table.locator('[data-entity="iris-1"]')).to_contain_text("50%")
    expect(page.locator(".page-head .badge", has_text=UPDATING)).to_have_count(0, timeout=READY_S)
    expect(page.locator(".page-head .badge", has_text=READY)).to_be_visible()
    shot(page, shots, "06-two-versions")


def test_ai_gateway_rate_limit_saved(admin_page, api, iris_ui, shots: Path):
    from playwright.sync_api import expect

    page = admin_page
    r = api.put(f"/api/2.0/serving-endpoints/{EP}/ai-gateway", json={"usage_tracking_config": {"enabled": False}})
    assert r.status_code == 200, r.text    # no rate limits, no usage tracking
    page.goto(f"/ui/endpoints/{EP}")
    page.get_by_role("tab", name="AI gateway").click()
    page.get_by_role("button", name="+ Add rate limit").click()
    page.locator('[data-field="rate_limits.0.key"] select').select_option("user")
    page.locator('[data-field="rate_limits.0.calls"] input').fill("120")
    page.get_by_label("Usage tracking: record who called, when, and how many tokens").check()
    expect(page.locator("#gateway-json")).to_contain_text('"calls": 120')
    page.get_by_role("button", name="Save AI gateway").click()
    expect(page.locator("#gateway-status")).to_contain_text("Saved")
    page.reload()
    expect(page.locator('[data-field="rate_limits.0.calls"] input')).to_have_value("120")
    expect(page.locator('[data-field="rate_limits.0.key"] select')).to_have_value("user")
    expect(page.get_by_label("Usage tracking: record who called, when, and how many tokens")).to_be_checked()
    # A limit with neither calls nor tokens: the server's 400 is shown at the field it names.
    page.get_by_role("button", name="+ Add rate limit").click()
    page.get_by_role("button", name="Save AI gateway").click()
    err = page.locator('[data-field="rate_limits.1"] > .field-error')
    expect(err).to_contain_text("INVALID_PARAMETER_VALUE")
    expect(err).to_contain_text("one of calls or tokens is required")
    shot(page, shots, "07-ai-gateway")


def test_server_400_shown_in_place(admin_page, shots: Path):
    from playwright.sync_api import expect

    page = admin_page
    page.goto("/ui/create")
    page.get_by_label("Endpoint name").fill("bad name!")
    page.locator('[data-field="served_entities.0.entity_name"] select').select_option(IRIS)
    expect(page.locator('[data-field="served_entities.0.entity_version"] select')).to_have_value("2")
    page.get_by_role("button", name="Create endpoint").click()
    err = field(page, "name").locator(".field-error")
    expect(err).to_contain_text("INVALID_PARAMETER_VALUE: name:")
    expect(page.get_by_label("Endpoint name")).to_have_attribute("aria-invalid", "")
    expect(page.locator("#form-error")).to_contain_text("name")
    shot(page, shots, "08-server-400")


@pytest.fixture()
def chat_name(api):
    yield CHAT
    api.delete(f"/api/2.0/serving-endpoints/{CHAT}")


def test_chat_with_streaming_external_model(admin_page, chat_name, shots: Path, fake_llm):
    from playwright.sync_api import expect

    page = admin_page
    page.goto("/ui/create")
    page.get_by_label("Endpoint name").fill(CHAT)
    page.get_by_role("radio", name="External model").check()
    card = field(page, "served_entities.0")
    card.locator('[data-field="served_entities.0.external_model.provider"] select').select_option("custom")
    page.get_by_label("Model name at the provider").fill("tiny")
    page.get_by_label("Provider URL").fill(fake_llm.url)
    page.get_by_label("Authentication").select_option("bearer")
    token_field = field(page, "served_entities.0.external_model.custom_provider_config.bearer_token_auth.token")
    token_field.locator("select").select_option("plain")
    token_field.locator("input").fill("upstream-secret")
    expect(page.locator("#request-json")).to_contain_text('"token_plaintext": "upstream-secret"')
    page.get_by_role("button", name="Create endpoint").click()
    expect(page).to_have_url(re.compile(rf"/ui/endpoints/{CHAT}$"))
    expect(page.locator(".page-head .badge", has_text=READY)).to_be_visible(timeout=60_000)
    page.get_by_role("tab", name="Query").click()
    box = page.get_by_role("textbox", name="Message")
    box.fill("Hi there")
    box.press("Enter")
    reply = page.locator("#chat-log .msg-assistant .msg-text").last
    expect(reply).to_have_text("".join(FAKE_REPLY))
    expect(page.locator("#usage-tokens")).to_contain_text(f"total {FAKE_USAGE['total_tokens']} tokens")
    assert fake_llm.requests[-1]["auth"] == "Bearer upstream-secret"
    assert fake_llm.requests[-1]["body"]["stream"] is True
    page.get_by_role("button", name="openai").click()
    expect(page.locator("#snippet")).to_contain_text("client.chat.completions.create(")
    shot(page, shots, "09-chat")


@pytest.fixture()
def two_external(api, fake_llm):
    """`keep-ui` and `doomed-ui`: external models (no replica to start)."""
    names = ["keep-ui", "doomed-ui"]
    for n in names:
        make_endpoint(api, n, [external(fake_llm)])
    yield names
    for n in names:
        api.delete(f"/api/2.0/serving-endpoints/{n}")


def test_delete_endpoint(admin_page, two_external, shots: Path):
    from playwright.sync_api import expect

    page, (keep, doomed) = admin_page, two_external
    page.goto(f"/ui/endpoints/{doomed}")
    page.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"Delete {doomed}?")
    dialog.get_by_role("button", name="Delete endpoint").click()
    expect(page).to_have_url(re.compile(r"/ui/endpoints$"))
    expect(page.locator(f'#endpoints-table tr[data-endpoint="{keep}"]')).to_be_visible()
    expect(page.locator(f'#endpoints-table tr[data-endpoint="{doomed}"]')).to_have_count(0)


def test_unauthenticated_and_sign_out(admin_page, ladle: LadleProcess, iris_ui, shots: Path):
    from playwright.sync_api import expect

    page = admin_page
    page.evaluate("sessionStorage.setItem('ladle.token', 'revoked-token')")
    page.goto(f"/ui/endpoints/{EP}")
    expect(page).to_have_url(re.compile(r"/ui/signin\?next="))
    expect(page.get_by_role("status").filter(has_text="Invalid access token")).to_be_visible()
    page.get_by_label("Access token").fill(ladle.admin_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(rf"/ui/endpoints/{EP}$"))  # back where the 401 struck
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/ui/signin$"))
    assert page.evaluate("sessionStorage.getItem('ladle.token')") is None
    page.goto("/ui/usage")
    expect(page).to_have_url(re.compile(r"/ui/signin\?next="))
    shot(page, shots, "14-signed-out")
