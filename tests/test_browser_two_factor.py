"""Two-factor authentication in a real headless Chromium: set it up from the account page, then
sign in with a code from the app, and with a recovery code."""

from __future__ import annotations

import re
import time

import pyotp
import pytest

from tests.accounts import PASSWORD
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
