"""Identity in the browser: the Me page (who am I, personal access tokens shown once and
revoked, OAuth secrets of service principals) and the admin pages (users, service principals,
groups and their members through SCIM), against the session's real server. Each test opens its
own page and makes its own principals, so any one passes alone and in any order."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import httpx
import pytest

from ladle.testing.process import LadleProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
SCIM = "/api/2.0/preview/scim/v2"


@pytest.fixture()
def page(ladle: LadleProcess, browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=ladle.url)
    pg = ctx.new_page()
    pg.set_default_timeout(15_000)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


def sign_in(page, token: str) -> None:
    from playwright.sync_api import expect

    page.goto("/ui/signin")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/ui/endpoints$"))


def user_token(ladle: LadleProcess, name: str) -> str:
    """A token for a (non-admin) user, made by the admin over the API."""
    with ladle.client() as c:
        r = c.post("/api/2.0/token-management/on-behalf-of/tokens",
                   json={"user_name": name, "lifetime_seconds": 3600, "comment": "web test"})
    assert r.status_code == 200, r.text
    return r.json()["token_value"]


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def test_me_page_shows_the_signed_in_admin(page, ladle: LadleProcess, shots: Path):
    from playwright.sync_api import expect

    sign_in(page, ladle.admin_token)
    page.get_by_role("link", name="Signed in as admin").click()
    expect(page).to_have_url(re.compile(r"/ui/me$"))
    expect(page.get_by_role("heading", name="Me", exact=True)).to_be_visible()
    props = page.locator("#me-props")
    expect(props.locator('[data-prop="name"]')).to_have_text("admin")
    expect(props.locator('[data-prop="kind"]')).to_have_text("User")
    expect(props.locator('[data-prop="admin"]')).to_contain_text("Yes")
    expect(props.locator('[data-prop="groups"]')).to_contain_text("admins")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin")).to_be_visible()
    page.screenshot(path=str(shots / "id-01-me-admin.png"), full_page=True)


def test_token_created_shown_once_works_and_is_revoked(page, ladle: LadleProcess, shots: Path):
    from playwright.sync_api import expect

    name = unique("ui-carol") + "@example.com"
    sign_in(page, user_token(ladle, name))
    page.goto("/ui/me")
    expect(page.locator('#me-props [data-prop="name"]')).to_have_text(name)
    expect(page.locator('#me-props [data-prop="admin"]')).to_have_text("No")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin")).to_be_hidden()
    expect(page.locator("#tokens tbody tr", has_text="web test")).to_have_count(1)  # the one we signed in with

    page.get_by_label("Comment").fill("laptop CLI")
    page.get_by_label("Lifetime (days)").fill("0")
    page.get_by_role("button", name="Generate token").click()
    expect(page.locator('[data-field="lifetime_seconds"] .field-error')).to_contain_text("1 or more")
    page.get_by_label("Lifetime (days)").fill("7")
    page.get_by_role("button", name="Generate token").click()
    box = page.locator("#new-token-value")
    expect(box).to_have_value(re.compile(r"^dapi\w+"))
    value = box.input_value()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=ladle.url)
    page.get_by_role("button", name="Copy token").click()
    expect(page.locator("#toast")).to_have_text("Copied to clipboard")
    assert page.evaluate("navigator.clipboard.readText()") == value
    row = page.locator("#tokens tbody tr", has_text="laptop CLI")
    expect(row).to_have_count(1)
    page.screenshot(path=str(shots / "id-02-token-created.png"), full_page=True)

    with httpx.Client(base_url=ladle.url, headers={"Authorization": f"Bearer {value}"}) as api:
        me = api.get(f"{SCIM}/Me")
        assert me.status_code == 200 and me.json()["userName"] == name
        page.reload()   # the value is never shown again
        expect(row).to_have_count(1)
        expect(page.locator("#new-token")).to_be_hidden()
        assert value not in page.content()

        row.get_by_role("button", name="Revoke laptop CLI").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("Revoke laptop CLI?")
        dialog.get_by_role("button", name="Revoke token").click()
        expect(row).to_have_count(0)
        assert api.get(f"{SCIM}/Me").status_code == 401


def test_admin_manages_users_service_principals_and_groups(page, ladle: LadleProcess, shots: Path):
    from playwright.sync_api import expect

    user, robot, team = unique("ui-dave") + "@example.com", unique("ui-robot"), unique("ui-team")
    sign_in(page, ladle.admin_token)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    expect(page).to_have_url(re.compile(r"/ui/admin/users$"))
    expect(page.get_by_role("heading", name="Users", exact=True)).to_be_visible()
    page.get_by_label("User name").fill(user)
    page.get_by_label("Display name").fill("Dave")
    page.get_by_role("button", name="Add user").click()
    urow = page.locator(f'#principals tr[data-principal="{user}"]')
    expect(urow).to_contain_text("Dave")
    page.get_by_label("User name").fill(user)   # again: the server's 409 is shown
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_role("alert").filter(has_text="RESOURCE_ALREADY_EXISTS")).to_be_visible()
    page.get_by_placeholder("Filter by name").fill("no-such-name")
    expect(urow).to_have_count(0)
    page.get_by_placeholder("Filter by name").fill("ui-dave")
    expect(urow).to_be_visible()

    page.get_by_role("link", name="Service principals", exact=True).click()
    # the users page has a "Display name" field too: fill only once the new page is there
    expect(page).to_have_url(re.compile(r"/ui/admin/service-principals$"))
    expect(page.get_by_role("button", name="Add service principal")).to_be_visible()
    page.get_by_label("Display name").fill(robot)
    page.get_by_role("button", name="Add service principal").click()
    srow = page.locator("#principals tbody tr", has_text=robot)
    expect(srow).to_have_count(1)
    app_id = srow.locator("[data-application-id]").inner_text()
    with ladle.client() as c:
        listed = c.get(f"{SCIM}/ServicePrincipals", params={"filter": f'displayName eq "{robot}"'}).json()
    assert [r["applicationId"] for r in listed["Resources"]] == [app_id]
    page.screenshot(path=str(shots / "id-03-admin-sps.png"), full_page=True)

    page.get_by_role("link", name="Groups", exact=True).click()
    page.get_by_label("Group name").fill("-not/a name")   # the server's 400, at the field
    page.get_by_role("button", name="Create group").click()
    expect(page.locator('[data-field="displayName"] .field-error')).to_contain_text("INVALID_PARAMETER_VALUE")
    expect(page.get_by_label("Group name")).to_have_attribute("aria-invalid", "")
    page.get_by_label("Group name").fill(team)
    page.get_by_role("button", name="Create group").click()
    grow = page.locator(f'#groups tr[data-group="{team}"]')
    expect(grow).to_contain_text("no members")
    grow.get_by_label(f"Member to add to {team}").select_option(label=f"{user} (user)")
    grow.get_by_role("button", name=f"Add to {team}").click()
    expect(grow.locator(f'[data-member="{user}"]')).to_be_visible()
    with ladle.client() as c:
        g = c.get(f"{SCIM}/Groups", params={"filter": f'displayName eq "{team}"'}).json()["Resources"][0]
    assert [m["display"] for m in g["members"]] == [user]
    page.screenshot(path=str(shots / "id-04-admin-groups.png"), full_page=True)
    grow.get_by_role("button", name=f"Remove {user} from {team}").click()
    expect(grow).to_contain_text("no members")
    grow.get_by_role("button", name=f"Delete group {team}").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete group").click()
    expect(grow).to_have_count(0)

    page.get_by_role("link", name="Users", exact=True).click()
    urow.get_by_role("button", name=f"Delete {user}").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"Delete {user}?")
    dialog.get_by_role("button", name="Cancel").click()   # nothing happens
    expect(urow).to_be_visible()
    urow.get_by_role("button", name=f"Delete {user}").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete user").click()
    expect(urow).to_have_count(0)
    page.get_by_role("link", name="Service principals", exact=True).click()
    srow.get_by_role("button", name=f"Delete {app_id}").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete service principal").click()
    expect(srow).to_have_count(0)
    with ladle.client() as c:
        assert c.get(f"{SCIM}/Users", params={"filter": f'userName eq "{user}"'}).json()["totalResults"] == 0


def test_non_admin_sees_admins_only(page, ladle: LadleProcess, shots: Path):
    from playwright.sync_api import expect

    name = unique("ui-erin") + "@example.com"
    sign_in(page, user_token(ladle, name))
    expect(page.get_by_role("link", name=f"Signed in as {name}")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin")).to_be_hidden()
    page.goto("/ui/admin/groups")
    expect(page.get_by_role("heading", name="Admins only")).to_be_visible()
    expect(page.locator("#admins-only")).to_contain_text(f"You are signed in as {name}, who is not an admin")
    expect(page.locator("#groups")).to_have_count(0)
    page.screenshot(path=str(shots / "id-05-admins-only.png"), full_page=True)


def test_service_principal_manages_its_oauth_secrets(page, ladle: LadleProcess, shots: Path):
    from playwright.sync_api import expect

    robot = unique("ui-m2m")
    with ladle.client() as c:
        sp = c.post(f"{SCIM}/ServicePrincipals", json={"displayName": robot}).json()
        tok = c.post("/api/2.0/token-management/on-behalf-of/tokens",
                     json={"application_id": sp["applicationId"], "lifetime_seconds": 3600}).json()["token_value"]
    sign_in(page, tok)
    page.goto("/ui/me")
    expect(page.locator('#me-props [data-prop="kind"]')).to_have_text("Service principal")
    expect(page.locator('#me-props [data-prop="name"]')).to_have_text(sp["applicationId"])
    section = page.locator("#oauth-secrets")
    expect(section.locator("#secret-client-id")).to_have_text(sp["applicationId"])
    expect(section.locator("#secrets")).to_contain_text("No OAuth secrets")
    section.get_by_role("button", name="Create secret").click()
    box = section.locator("#new-secret-value")
    expect(box).not_to_have_value("")
    secret = box.input_value()
    row = section.locator("#secrets tbody tr[data-secret]")
    expect(row).to_have_count(1)
    page.screenshot(path=str(shots / "id-06-oauth-secret.png"), full_page=True)

    def client_credentials() -> httpx.Response:
        return httpx.post(f"{ladle.url}/oidc/v1/token", auth=(sp["applicationId"], secret),
                          data={"grant_type": "client_credentials", "scope": "all-apis"})

    r = client_credentials()
    assert r.status_code == 200, r.text
    me = httpx.get(f"{ladle.url}{SCIM}/Me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    assert me.status_code == 200 and me.json()["userName"] == sp["applicationId"]
    page.reload()
    expect(row).to_have_count(1)
    assert secret not in page.content()
    row.get_by_role("button", name=re.compile(r"^Delete secret ")).click()
    page.get_by_role("dialog").get_by_role("button", name="Delete secret").click()
    expect(row).to_have_count(0)
    assert client_credentials().status_code == 401

    sign_in(page, ladle.admin_token)   # an admin reaches any service principal's secrets
    page.goto("/ui/admin/service-principals")
    page.get_by_role("link", name=f"OAuth secrets of {robot}").click()
    expect(page).to_have_url(re.compile(rf"/ui/me\?sp={sp['id']}$"))
    expect(section.get_by_label("Service principal")).to_have_value(sp["id"])
    expect(section.locator("#secret-client-id")).to_have_text(sp["applicationId"])
    expect(section.locator("#secrets")).to_contain_text("No OAuth secrets")
