"""The last-owner rule under concurrency: parallel real HTTP requests against a served app."""

from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import delete, select

from app.core import edits
from app.core.tenancy import tenant_context
from app.extensions import db
from app.models import Membership, User
from tests.accounts import add_member
from tests.conftest import csrf_token_from
from tests.factories import make_team
from tests.support.http import HttpBrowser

TRIES = 12
FLASH = re.compile(r'<div class="flash flash--(\w+)">([^<]*)</div>')
REFUSALS = (
    "You are the last owner",
    "An organization needs at least one owner",
    "no longer a member",
    "Only an owner can",  # the other request took this person's owner role first
)


class HttpSession(HttpBrowser):
    """One browser: its own cookies, redirects reported rather than followed."""

    def request(self, path: str, data: dict | None = None) -> tuple[int, str, str]:
        """(status, Location, body) of one request."""
        page = self.open(path, data)
        return page.status, page.location, page.body

    def token(self) -> str:
        status, _, html = self.request("/acme/members")
        assert status == 200, status
        return csrf_token_from(html)


@pytest.fixture
def owners(app, live_server):
    """Two owners of Acme (ann@, bob@); returns (org id, {email: user id})."""
    with app.app_context():
        acme = make_team("Acme", "acme", "ann@example.com", {"bob@example.com": "owner"})
        people = {email: user.id for email, user in acme.people.items()}
        db.session.commit()
        return acme.id, people


def _reset(app, org_id, users) -> dict[str, str]:
    """Make both people owners again; returns {email: membership id}."""
    with app.app_context(), tenant_context(org_id):
        db.session.execute(delete(Membership))
        for user_id in users.values():
            add_member(_Org(org_id), db.session.get(User, user_id), "owner")
        db.session.commit()
        return {
            db.session.get(User, m.user_id).email: str(m.id) for m in db.session.scalars(select(Membership))
        }


class _Org:
    def __init__(self, org_id):
        self.id = org_id


def _owners(app, org_id) -> int:
    with app.app_context(), tenant_context(org_id):
        return len(db.session.scalars(select(Membership).where(Membership.role == "owner")).all())


def _in_parallel(*calls):
    """Run the calls at the same moment, each in its own thread; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        barrier.wait()
        results[index] = call()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def _post(session: HttpSession, path: str, token: str, **data):
    return lambda: session.request(path, {"csrf_token": token, **data})


#: What the role form on the members page carries: the role it showed (``app.core.edits``).
AS_OWNER = edits.encode({"role": "owner"})

COMBINATIONS = {
    # Both owners leave.
    "leave/leave": lambda ids: [("ann", "/acme/leave", {}), ("bob", "/acme/leave", {})],
    # Each owner makes the other an admin.
    "demote/demote": lambda ids: [
        ("ann", f"/acme/members/{ids['bob@example.com']}/role", {"role": "admin", "loaded": AS_OWNER}),
        ("bob", f"/acme/members/{ids['ann@example.com']}/role", {"role": "admin", "loaded": AS_OWNER}),
    ],
    # Ann removes Bob while she leaves (two tabs).
    "remove/leave (one owner, two tabs)": lambda ids: [
        ("ann", f"/acme/members/{ids['bob@example.com']}/remove", {}),
        ("ann2", "/acme/leave", {}),
    ],
    # Ann removes Bob at the moment Bob leaves.
    "remove/leave (same member)": lambda ids: [
        ("ann", f"/acme/members/{ids['bob@example.com']}/remove", {}),
        ("bob", "/acme/leave", {}),
    ],
    # Each owner removes the other.
    "remove/remove": lambda ids: [
        ("ann", f"/acme/members/{ids['bob@example.com']}/remove", {}),
        ("bob", f"/acme/members/{ids['ann@example.com']}/remove", {}),
    ],
}


def _outcome(session: HttpSession, response) -> str:
    """ "done", "refused" (a 404, or a redirect to a page whose error flash says why), or what else it was."""
    status, location, body = response
    if status == 404:
        return "refused"
    if status != 303:
        return f"{status}: {body[:300]}"
    page = session.request(re.sub(r"^https?://[^/]+", "", location))[2]
    flashes = FLASH.findall(page)
    if any(kind == "success" for kind, _ in flashes):
        return "done"
    if any(kind == "error" and any(reason in text for reason in REFUSALS) for kind, text in flashes):
        return "refused"
    return f"303 to {location} with {flashes}"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("combination", list(COMBINATIONS))
def test_parallel_owner_changes_always_leave_an_owner(app, live_server, owners, combination):
    """Two owner-reducing requests at the same moment leave an owner; the refused one gets a clear message."""
    org_id, users = owners
    sessions = {
        "ann": HttpSession(live_server.url),
        "ann2": HttpSession(live_server.url),
        "bob": HttpSession(live_server.url),
    }
    sessions["ann"].log_in("ann@example.com")
    sessions["ann2"].log_in("ann@example.com")
    sessions["bob"].log_in("bob@example.com")
    for attempt in range(TRIES):
        ids = _reset(app, org_id, users)
        planned = COMBINATIONS[combination](ids)
        calls = [_post(sessions[who], path, sessions[who].token(), **data) for who, path, data in planned]
        results = _in_parallel(*calls)
        owners_left = _owners(app, org_id)
        outcomes = sorted(
            _outcome(sessions[who], result) for (who, _, _), result in zip(planned, results, strict=True)
        )
        assert owners_left == 1, f"try {attempt}: {owners_left} owners left, requests {outcomes}"
        assert outcomes == ["done", "refused"], (attempt, outcomes)
