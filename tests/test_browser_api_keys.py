"""API keys in a real headless Chromium: an owner makes a key in the organization's settings,
copies it from the page that shows it once, a script uses it, and the owner revokes it; the
API reference is readable from the settings."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from tests.factories import acme_in_browser

pytestmark = pytest.mark.browser


def _call(live_server, token: str, path: str = "/api/v1/issues") -> int:
    request = urllib.request.Request(live_server.url + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_an_owner_makes_a_key_a_script_uses_it_and_the_owner_revokes_it(page, app, live_server):
    """Settings → API keys: name, two scopes, a lifetime; the key shown once works for a script;
    the list shows its end and last use; revoking asks first and the key stops working."""
    acme_in_browser(page, app, live_server)
    page.goto(live_server.url + "/acme/settings")
    page.get_by_role("link", name="API keys", exact=True).click()
    page.get_by_role("heading", name="API keys", exact=True).wait_for()
    assert page.get_by_text("No keys yet.").is_visible()

    page.get_by_label("Name").fill("Release script")
    page.get_by_label("issues:read").check()
    page.get_by_label("comments:write").check()
    page.get_by_label("Expires after").select_option("30")
    page.get_by_role("button", name="Make the key").click()
    page.get_by_role("heading", name="Your new key").wait_for()
    token = page.locator("[data-new-key]").inner_text().strip()
    assert token.startswith("wlk_") and len(token) == 64

    assert _call(live_server, token) == 200
    assert _call(live_server, token, "/api/v1/projects") == 403  # no projects scope

    page.goto(live_server.url + "/acme/settings/api-keys")
    assert page.locator("[data-new-key]").count() == 0  # shown once only
    row = page.get_by_role("row").filter(has_text="Release script")
    assert row.get_by_text(f"wlk_…{token[-4:]}").is_visible()
    assert row.get_by_text("comments:write, issues:read").is_visible()
    assert row.get_by_text("from 127.0.0.1").is_visible()

    row.get_by_role("link", name="Revoke Release script").click()
    page.get_by_role("heading", name="Revoke the key “Release script”?").wait_for()
    page.get_by_role("button", name="Revoke the key").click()
    page.get_by_text("The key “Release script” is revoked.").wait_for()
    assert _call(live_server, token) == 401
    assert page.problems == []


def test_the_api_reference_is_readable_from_the_settings(page, app, live_server):
    """The key page links to the reference: every part of it is there, linked from its contents."""
    acme_in_browser(page, app, live_server)
    page.goto(live_server.url + "/acme/settings/api-keys")
    page.get_by_role("link", name="Worklane API").first.click()
    page.get_by_role("heading", name="Authentication").wait_for()
    for section in ("Conventions", "Issues", "Projects", "Schemas", "Problems"):
        assert page.get_by_role("heading", name=section, exact=True).is_visible()
    page.get_by_role("link", name="Issues", exact=True).click()
    assert page.get_by_role("heading", name="PATCH /api/v1/issues/{issue} — Change an issue").is_visible()
    assert page.problems == []
