"""Two-factor authentication in a real headless Chromium: set it up from the account page, then
sign in with a code from the app, and with a recovery code."""

from __future__ import annotations

import re
import time

import pyotp
import pytest

from tests.accounts import PASSWORD, browser_login
from tests.factories import OWNER, acme_in_browser
from tests.test_browser_accessibility import serious_violations

pytestmark = pytest.mark.browser


def _sign_in_with(page, live_server, code: str, check_page: bool = False) -> None:
    """Log out, give the password, then ``code`` at the second step; back on Acme's home."""
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Log in").wait_for()
    page.get_by_label("Email").fill(OWNER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Two-factor authentication").wait_for()
    assert page.url == live_server.url + "/login/two-factor"
    if check_page:
        assert serious_violations(page) == []
    page.get_by_label("Authentication code").fill(code)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r".*/acme/$"))


def test_set_up_then_sign_in_with_a_code_and_with_a_recovery_code(page, app, live_server):
    """Olive scans (reads) the secret, confirms it with a code, keeps her recovery codes, then signs
    in once with the app's next code and once with a recovery code. The pages pass axe-core's
    WCAG A/AA rules at serious and critical."""
    acme_in_browser(page, app, live_server)
    page.get_by_role("link", name="Olive Owner").click()
    page.get_by_role("button", name="Set up two-factor authentication").click()
    page.get_by_role("heading", name="Set up two-factor authentication").wait_for()
    assert page.get_by_role("img", name="QR code of the secret").is_visible()
    assert serious_violations(page) == []
    authenticator = pyotp.TOTP(page.locator("#two-factor-secret").inner_text())
    page.get_by_label("Code from your app").fill(authenticator.now())
    page.get_by_role("button", name="Turn on two-factor authentication").click()
    page.get_by_role("heading", name="Your recovery codes").wait_for()
    codes = page.locator("#recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    assert serious_violations(page) == []
    page.get_by_role("link", name="I have saved them").click()
    page.get_by_text("On since").wait_for()

    # The code of the next 30-second step: the one just used is refused for its window.
    _sign_in_with(page, live_server, authenticator.at(time.time() + 30), check_page=True)
    _sign_in_with(page, live_server, codes[0])
    assert page.problems == []


def _set_up_two_factor(page) -> pyotp.TOTP:
    """From the account page: the set-up, confirmed with the app's code; the authenticator."""
    page.get_by_role("button", name="Set up two-factor authentication").click()
    authenticator = pyotp.TOTP(page.locator("#two-factor-secret").inner_text())
    page.get_by_label("Code from your app").fill(authenticator.now())
    page.get_by_role("button", name="Turn on two-factor authentication").click()
    page.get_by_role("link", name="I have saved them").click()
    page.get_by_text("On since").wait_for()
    return authenticator


def test_requiring_two_factor_sends_a_member_without_it_to_set_it_up(page, app, live_server):
    """Olive cannot require two-factor before she has it (the form says so); once she has it and
    requires it at once, Grace signs in to a page that sends her to set it up, and after doing so
    she is back in Acme."""
    acme_in_browser(page, app, live_server, {"grace@example.com": "member"})
    page.goto(live_server.url + "/acme/settings")
    page.get_by_label("Require two-factor authentication of every member").check()
    page.get_by_role("button", name="Save two-factor policy").click()
    page.get_by_text("Turn on two-factor authentication for your own account first").wait_for()

    page.goto(live_server.url + "/account")
    _set_up_two_factor(page)
    page.goto(live_server.url + "/acme/settings")
    page.get_by_label("Require two-factor authentication of every member").check()
    page.get_by_label("Grace period (days)").fill("0")
    page.get_by_role("button", name="Save two-factor policy").click()
    page.get_by_text("The two-factor policy is saved.").wait_for()
    assert page.get_by_text("Required of every member since").is_visible()
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Log in").wait_for()

    browser_login(page, live_server, "grace@example.com")
    page.get_by_role("heading", name="Two-factor authentication required").wait_for()
    assert page.get_by_text("Acme requires two-factor authentication of its members").is_visible()
    page.get_by_role("link", name="Set up two-factor authentication").click()
    _set_up_two_factor(page)
    page.goto(live_server.url + "/acme/")
    page.get_by_role("heading", name="Acme", exact=True).wait_for()
    # The refused form (422) and the blocked page (403) answer with those statuses, which Chromium
    # reports on the console; nothing else may be there.
    status = "Failed to load resource: the server responded with a status of {}"
    assert page.problems == [status.format("422 (UNPROCESSABLE ENTITY)"), status.format("403 (FORBIDDEN)")]


def test_new_recovery_codes_then_turning_two_factor_off(page, app, live_server):
    """On the two-factor page Olive makes new recovery codes with her password, then turns
    two-factor off with her password and a code; signing in then asks for the password only."""
    acme_in_browser(page, app, live_server)
    page.goto(live_server.url + "/account")
    authenticator = _set_up_two_factor(page)
    page.get_by_role("link", name="Recovery codes and turning it off").click()
    page.get_by_text("10 of 10 unused").wait_for()
    assert serious_violations(page) == []
    page.get_by_label("Your password").first.fill(PASSWORD)
    page.get_by_role("button", name="Make new recovery codes").click()
    page.get_by_role("heading", name="Your recovery codes").wait_for()
    assert page.locator("#recovery-codes code").count() == 10
    page.get_by_role("link", name="I have saved them").click()

    page.get_by_role("link", name="Recovery codes and turning it off").click()
    turn_off = page.locator("form", has=page.get_by_role("button", name="Turn off two-factor authentication"))
    turn_off.get_by_label("Your password").fill(PASSWORD)
    turn_off.get_by_label("Authentication code").fill(authenticator.at(time.time() + 30))
    turn_off.get_by_role("button", name="Turn off two-factor authentication").click()
    page.get_by_text("Two-factor authentication is off.").wait_for()
    page.get_by_role("button", name="Log out").click()
    browser_login(page, live_server, OWNER)
    assert page.problems == []
