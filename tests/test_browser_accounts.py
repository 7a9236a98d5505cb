"""The account and organization flows in a real headless Chromium, with real mail."""

from __future__ import annotations

import re

import pytest

from tests.conftest import run_flask

pytestmark = pytest.mark.browser


def _deliver_and_read_link(env, sink, to: str, path_part: str) -> str:
    """Run a worker until the queue is empty, then take the link from the newest mail to ``to``."""
    result = run_flask(env, "worker", "--burst")
    assert result.returncode == 0, result.stderr
    mails = [m for m in sink.messages() if m["To"] == to]
    assert mails, f"no mail to {to}"
    text = mails[-1].get_body(preferencelist=("plain",)).get_content()
    return re.search(rf"https?://\S+{path_part}\S+", text).group(0)


def _local(url: str, live_server) -> str:
    return re.sub(r"^https?://[^/]+", live_server.url, url)


@pytest.mark.processes
def test_sign_up_verify_invite_accept_and_switch(page, app, live_server, migrated_env, smtp_sink):
    """Sign up, confirm by mail, create a second organization, invite, accept as the colleague, switch."""
    env = {**migrated_env, "SMTP_URL": smtp_sink.url}

    page.goto(live_server.url + "/signup")
    page.get_by_label("Your name").fill("Ada Lovelace")
    page.get_by_label("Work email").fill("ada@example.com")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_label("Organization name").fill("Analytical Engines")
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("heading", name="Check your email").wait_for()

    verify = _deliver_and_read_link(env, smtp_sink, "ada@example.com", "/verify/")
    page.goto(_local(verify, live_server))
    page.get_by_text("Your email address is confirmed").wait_for()
    assert page.get_by_label("Email").input_value() == "ada@example.com"
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Analytical Engines", exact=True).wait_for()

    page.locator("summary.switcher__current").click()
    page.get_by_role("link", name="+ Create organization").click()
    page.get_by_label("Organization name").fill("Difference Engines")
    page.get_by_role("button", name="Create organization").click()
    page.get_by_role("heading", name="Difference Engines", exact=True).wait_for()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Members").click()
    page.get_by_label("Email address").fill("charles@example.com")
    page.get_by_label("Role").select_option("member")
    page.get_by_role("button", name="Send invitation").click()
    page.get_by_text("Invitation sent to charles@example.com").wait_for()

    invite = _deliver_and_read_link(env, smtp_sink, "charles@example.com", "/invitations/")
    colleague = page.context.browser.new_context().new_page()
    colleague.goto(_local(invite, live_server))
    colleague.get_by_role("link", name="Create your account and join").click()
    colleague.get_by_label("Your name").fill("Charles Babbage")
    colleague.get_by_label("Password").fill("another good passphrase")
    colleague.get_by_role("button", name="Create account and join").click()
    colleague.get_by_role("heading", name="Difference Engines", exact=True).wait_for()
    assert "Member" in colleague.locator(".switcher__menu").text_content()

    page.reload()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Members").click()
    page.get_by_role("cell", name="Charles Babbage", exact=True).wait_for()
    page.locator("summary.switcher__current").click()
    page.locator(".switcher__menu").get_by_role("link", name=re.compile("Analytical Engines")).click()
    page.get_by_role("heading", name="Analytical Engines", exact=True).wait_for()
    assert page.url.endswith("/analytical-engines/")
    assert page.problems == []
