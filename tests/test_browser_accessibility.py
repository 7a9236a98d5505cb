"""The everyday pages checked with axe-core (4.14.1, in ``tests/support/vendor``, the npm
registry's ``axe.min.js``) in a real headless Chromium: no serious or critical violation of
WCAG 2.1 A/AA on the overview, lists, board, issue, inbox, reports, settings and audit log pages, in the
light theme and the dark one."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.tenancy import tenant_context
from app.extensions import db
from app.models import Notification
from tests.accounts import browser_login
from tests.factories import OWNER, make_acme

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "support" / "vendor" / "axe-4.14.1.min.js"
#: The rules axe runs: WCAG 2.0/2.1 levels A and AA, and its best practices.
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]

PAGES = {
    "overview": "/acme/",
    "issues": "/acme/issues",
    "project list": "/acme/projects/WEB/issues",
    "board": "/acme/projects/WEB/board",
    "issue": "/acme/issues/WEB-1",
    "new issue": "/acme/projects/WEB/issues/new",
    "inbox": "/acme/notifications",
    "reports": "/acme/reports",
    "settings": "/acme/settings",
    "members": "/acme/members",
    "labels": "/acme/settings/labels",
    "audit log": "/acme/settings/audit",
    "plan and usage": "/acme/settings/plan",
    "search": "/acme/search?q=checkout",
    "account": "/account",
}


@pytest.fixture
def acme_pages(app):
    """Acme with issues in several states, labels, a comment and a notification for the owner."""
    with app.app_context():
        acme = make_acme({"grace@example.com": "member"}, labels=("bug", "ui"))
        grace = acme.people["grace@example.com"]
        first = acme.add_issue(
            "Checkout fails on Safari", "Steps:\n\n1. Pay\n2. **Boom**", label_ids=[acme.labels["bug"].id]
        )
        acme.add_issue("Tidy the checkout form", state="in_progress", assignee_ids=[grace.id])
        acme.add_issue("Ship the release", state="done")
        with tenant_context(acme.id):
            db.session.add(
                Notification(
                    user_id=acme.owner.id,
                    issue_id=first.id,
                    actor_id=grace.id,
                    kind=Notification.COMMENTED,
                    excerpt="Seen on my phone too",
                )
            )
        db.session.commit()


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical violations on the page as shown, one line each."""
    if not page.evaluate("() => Boolean(window.axe)"):
        page.evaluate(AXE.read_text())  # through DevTools: the page's CSP admits no inline script
    found = page.evaluate(
        """async (tags) => {
            const results = await axe.run(document, { runOnly: { type: "tag", values: tags } });
            return results.violations
                .filter((v) => v.impact === "serious" || v.impact === "critical")
                .map((v) => {
                    const where = v.nodes.map((n) => n.target.join(" ")).join(", ");
                    return `${v.impact} ${v.id}: ${v.help} — ${where}`;
                });
        }""",
        TAGS,
    )
    return found


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("name", list(PAGES))
def test_the_page_has_no_serious_accessibility_violation(page, app, live_server, acme_pages, name, scheme):
    """The page, as its owner sees it in a light or dark theme, passes axe-core's WCAG A/AA rules
    at serious and critical."""
    page.emulate_media(color_scheme=scheme)
    browser_login(page, live_server, OWNER)
    page.goto(live_server.url + PAGES[name])
    assert page.evaluate("document.readyState") == "complete"
    violations = serious_violations(page)
    assert violations == [], f"{PAGES[name]} ({scheme}):\n" + "\n".join(violations)
    assert page.problems == [], "\n".join(page.problems)
