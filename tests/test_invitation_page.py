"""The invitation page works for every kind of visitor; the mail states the link's real lifetime."""

from __future__ import annotations

import ast
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.config import PROJECT_ROOT
from app.core.tenancy import tenant_context
from app.models import Invitation
from tests.accounts import add_member, login, make_org, make_user, post_form, sent_mails


@pytest.fixture
def invitation_link(app, client, db_session, redis_client, org):
    """An invitation to Acme for guest@example.com, as mailed."""
    login(client, "owner@example.com")
    post_form(client, "/acme/members", "/acme/invitations", email="guest@example.com", role="member")
    return sent_mails(redis_client, "guest@example.com")[-1].link()


VISITORS = {
    "anonymous": None,
    "the invitee, with an account": "guest@example.com",
    "a member of another organization": "other-org@example.com",
    "an account in no organization": "loner@example.com",
    "a member of the inviting organization": "acme-member@example.com",
}


@pytest.mark.parametrize("visitor", sorted(VISITORS))
def test_invitation_page_renders_for_every_visitor(app, db_session, org, invitation_link, visitor):
    """Anonymous or signed in (invitee, another organization's member, anyone): the page renders."""
    guest = make_user("guest@example.com", name="Gus Guest")
    other = make_user("other-org@example.com", name="Otto Other")
    make_org(other, "Other Org", "other-org")
    make_user("loner@example.com", name="Lone Ranger")
    member = make_user("acme-member@example.com", name="Amy Acme")
    add_member(org, member, "viewer")
    assert guest
    db_session.commit()
    client = app.test_client()
    if VISITORS[visitor]:
        login(client, VISITORS[visitor])
    response = client.get(invitation_link)
    assert response.status_code == 200, visitor
    assert "as member" in response.get_data(as_text=True)


def _helper_names(app) -> set[str]:
    """Names every template gets from the app (context processors and Jinja globals)."""
    with app.test_request_context("/"):
        context: dict = {}
        app.update_template_context(context)
    return set(context) | set(app.jinja_env.globals)


def _render_calls():
    """(file, line, keyword) for every keyword argument of a render_template/send_email call."""
    for path in sorted((PROJECT_ROOT / "app").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in {"render_template", "send_email", "render_email"}:
                for keyword in node.keywords:
                    if keyword.arg is not None:
                        yield path.relative_to(PROJECT_ROOT), node.lineno, keyword.arg


def test_no_view_shadows_a_template_helper(app):
    """No render_template or mail call passes a value under the name of a helper the layout calls."""
    helpers = _helper_names(app)
    assert {"role_label", "can", "url_for", "csp_nonce"} <= helpers
    shadowed = [f"{path}:{line} {arg}" for path, line, arg in _render_calls() if arg in helpers]
    assert shadowed == []


def test_invitation_mail_says_seven_days_for_a_seven_day_link(app, client, db_session, redis_client, org):
    """A 7-day invitation says "expires in 7 days", when sent and when sent again."""
    assert app.config["INVITATION_DAYS"] == 7
    login(client, "owner@example.com")
    post_form(client, "/acme/members", "/acme/invitations", email="guest@example.com", role="member")
    [first] = sent_mails(redis_client, "guest@example.com")
    assert "expires in 7 days." in first.text and "expires in 7 days." in first.html
    with tenant_context(org.id):
        invitation_id = db_session.scalars(select(Invitation.id)).one()
    post_form(client, "/acme/members", f"/acme/invitations/{invitation_id}/resend")
    again = sent_mails(redis_client, "guest@example.com")[-1]
    assert again is not first and "expires in 7 days." in again.text


def test_reset_mail_says_how_long_its_link_works(client, db_session, redis_client):
    """The reset mail's "expires in" comes from the same rounding (60 minutes for a one-hour link)."""
    make_user("ada@example.com")
    db_session.commit()
    post_form(client, "/forgot-password", email="ada@example.com")
    [mail] = sent_mails(redis_client, "ada@example.com")
    assert "expires in 60 minutes." in mail.text and "expires in 60 minutes." in mail.html


@pytest.mark.parametrize(
    ("lifetime", "text"),
    [
        (timedelta(days=7), "7 days"),
        (timedelta(days=7) - timedelta(microseconds=1), "7 days"),
        (timedelta(days=7) - timedelta(seconds=40), "7 days"),
        (timedelta(days=6, hours=13), "7 days"),
        (timedelta(days=1), "24 hours"),
        (timedelta(hours=36), "2 days"),
        (timedelta(hours=2) - timedelta(seconds=1), "2 hours"),
        (timedelta(hours=1), "60 minutes"),
        (timedelta(minutes=1), "1 minute"),
        (timedelta(seconds=20), "1 minute"),
        (timedelta(days=1, hours=-1), "23 hours"),
    ],
)
def test_durations_round_to_the_nearest_unit(lifetime, text):
    """Lifetimes are rounded to the nearest minute, hour or day, never cut down."""
    from app.core.web import duration_text

    assert duration_text(lifetime) == text
