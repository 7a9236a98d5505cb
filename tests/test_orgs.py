"""Organizations: tenant pages, roles, members and invitations."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.core.permissions import PERMISSIONS, READ_PERMISSIONS, ROLES, role_can
from app.core.tenancy import tenant_context
from app.models import AuditEvent, Invitation, Membership, Organization, User
from app.models.base import utcnow
from tests.accounts import PASSWORD, add_member, login, make_org, make_user, post_form, sent_mails
from tests.conftest import csrf_token_from


def _members(db_session, org):
    with tenant_context(org.id):
        return {m.user.email: m.role for m in db_session.scalars(select(Membership))}


def _audit_actions(db_session, org):
    with tenant_context(org.id):
        return [e.action for e in db_session.scalars(select(AuditEvent).order_by(AuditEvent.created_at))]


# --- tenant pages ------------------------------------------------------------------------


def test_non_members_get_404_like_a_missing_organization(client, db_session, org):
    """Another organization's pages answer 404, exactly like a slug that does not exist."""
    make_user("stranger@example.com")
    db_session.commit()
    login(client, "stranger@example.com")
    real = client.get("/acme/members")
    missing = client.get("/no-such-org/members")
    assert real.status_code == missing.status_code == 404
    assert "Acme" not in real.get_data(as_text=True)


def test_anonymous_visitors_are_sent_to_login(client, db_session, org):
    """Tenant pages ask anonymous visitors to log in, whether or not the slug exists."""
    for path in ("/acme/", "/no-such-org/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login")


def test_switcher_lists_every_organization_of_the_user(client, db_session, owner, org):
    """The layout's organization switcher lists all the user's organizations and nobody else's."""
    make_org(owner, "Second Org", "second")
    other = make_user("other@example.com")
    make_org(other, "Not Mine", "not-mine")
    db_session.commit()
    login(client, "owner@example.com")
    html = client.get("/acme/").get_data(as_text=True)
    assert 'href="/acme/"' in html and 'href="/second/"' in html
    assert "Not Mine" not in html


def test_create_organization_validates_the_address(client, db_session, owner, org):
    """A new organization needs a free, well-formed, unreserved address; errors keep the input."""
    login(client, "owner@example.com")
    for slug, message in [
        ("acme", "That address is taken."),
        ("login", "That address is reserved."),
        ("Bad Slug!", "Use 3 to 40 lowercase letters"),
    ]:
        response = post_form(client, "/orgs/new", None, name="Globex", slug=slug)
        assert response.status_code == 422, slug
        html = response.get_data(as_text=True)
        assert message in html and 'value="Globex"' in html
    created = post_form(client, "/orgs/new", None, name="Globex Corporation", slug="")
    assert created.status_code == 303 and created.headers["Location"] == "/globex-corporation/"
    assert client.get("/globex-corporation/").status_code == 200


# --- roles -------------------------------------------------------------------------------


def test_permission_map_matrix():
    """Owners can do everything, admins all but owner matters, members only work, viewers only read."""
    for permission in PERMISSIONS:
        assert role_can("owner", permission), permission
        assert role_can("viewer", permission) == (permission in READ_PERMISSIONS), permission
        assert role_can("admin", permission) == (permission not in {"org.delete", "members.manage_owners"})
        writes = {"work.edit", "reports.recompute"}
        assert role_can("member", permission) == (permission in READ_PERMISSIONS | writes), permission
    with pytest.raises(KeyError):
        role_can("owner", "no.such.permission")


def _tenant_write_rules(app):
    for rule in app.url_map.iter_rules():
        if "org_slug" in rule.arguments and "POST" in rule.methods:
            yield rule


@pytest.mark.parametrize("role", ROLES)
def test_role_matrix_on_every_tenant_form(app, client, db_session, org, role):
    """Every tenant POST route is refused (403) to roles without its permission; viewers change nothing."""
    if role != "owner":
        add_member(org, make_user(f"{role}-person@example.com"), role)
    db_session.commit()
    login(client, "owner@example.com" if role == "owner" else f"{role}-person@example.com")
    token = csrf_token_from(client.get("/acme/").get_data(as_text=True))
    checked = 0
    for rule in _tenant_write_rules(app):
        view = app.view_functions[rule.endpoint]
        permission = getattr(view, "required_permission", None)
        assert permission, f"{rule.endpoint} has no @require(permission)"
        if role_can(role, permission):
            continue
        values = {arg: "00000000-0000-7000-8000-000000000000" for arg in rule.arguments if arg != "org_slug"}
        url = rule.build({"org_slug": "acme", **values})[1]
        response = client.post(url, data={"csrf_token": token})
        assert response.status_code == 403, (role, rule.rule, response.status_code)
        checked += 1
    if role == "viewer":
        assert checked >= 5


def test_client_error_pages_keep_the_signed_in_navigation(client, db_session, org):
    """A 404 or 403 inside the organization shows the person's navigation, to go on from there;
    a page in an organization they are not in names nothing of it."""
    add_member(org, make_user("member@example.com", name="Grace Hopper"), "member")
    outsider = make_user("bert@example.com", name="Bert Outsider")
    make_org(outsider, "Beta", "beta")
    db_session.commit()
    login(client, "member@example.com")
    token = csrf_token_from(client.get("/acme/").get_data(as_text=True))
    for response, code in [
        (client.get("/acme/issues/WEB-999"), 404),
        (client.post("/acme/settings", data={"csrf_token": token, "name": "Hacked"}), 403),
        (client.get("/no/such/page"), 404),
    ]:
        html = response.get_data(as_text=True)
        assert response.status_code == code
        assert "Grace Hopper" in html and "Log out" in html
    inside = client.get("/acme/issues/WEB-999").get_data(as_text=True)
    assert 'href="/acme/projects/"' in inside and "Acme" in inside
    foreign = client.get("/beta/")
    assert foreign.status_code == 404
    html = foreign.get_data(as_text=True)
    assert "Grace Hopper" in html and "Beta" not in html and 'href="/beta/' not in html


def test_settings_are_read_only_for_members(client, db_session, org):
    """Members see the settings page but cannot change it."""
    member = make_user("member@example.com")
    add_member(org, member, "member")
    db_session.commit()
    login(client, "member@example.com")
    page = client.get("/acme/settings")
    assert page.status_code == 200 and "Only owners and admins" in page.get_data(as_text=True)
    response = client.post(
        "/acme/settings",
        data={"csrf_token": csrf_token_from(client.get("/acme/").get_data(as_text=True)), "name": "Hacked"},
    )
    assert response.status_code == 403
    db_session.expire_all()
    assert db_session.get(Organization, org.id).name == "Acme"


def test_last_owner_cannot_leave_or_be_demoted(client, db_session, org, owner):
    """The only owner can neither leave nor lose the owner role."""
    login(client, "owner@example.com")
    with tenant_context(org.id):
        mine_id = db_session.scalars(select(Membership)).one().id
    left = post_form(client, "/acme/leave")
    assert left.status_code == 303
    assert "You are the last owner" in client.get("/acme/members").get_data(as_text=True)
    admin = make_user("admin@example.com")
    add_member(org, admin, "admin")
    db_session.commit()
    demoted = post_form(
        client, "/acme/members", f"/acme/members/{mine_id}/role", role="admin", loaded='{"role": "owner"}'
    )
    assert demoted.status_code == 303
    assert _members(db_session, org)["owner@example.com"] == "owner"


def test_admins_cannot_touch_owners(client, db_session, org):
    """Admins can manage members and admins but not owners, and cannot make owners."""
    admin = make_user("admin@example.com")
    add_member(org, admin, "admin")
    member = make_user("member@example.com")
    member_ms_id = add_member(org, member, "member")
    db_session.commit()
    with tenant_context(org.id):
        owner_ms_id = db_session.scalar(select(Membership.id).where(Membership.role == "owner"))
    login(client, "admin@example.com")
    post_form(client, "/acme/members", f"/acme/members/{member_ms_id}/role", role="owner")
    post_form(client, f"/acme/members/{owner_ms_id}/remove")
    roles = _members(db_session, org)
    assert roles["member@example.com"] == "member" and roles["owner@example.com"] == "owner"
    post_form(client, "/acme/members", f"/acme/members/{member_ms_id}/role", role="viewer")
    assert _members(db_session, org)["member@example.com"] == "viewer"
    assert "member.role_changed" in _audit_actions(db_session, org)


def test_remove_member_records_an_audit_event(client, db_session, org):
    """Removing a member deletes the membership and is recorded for the audit log."""
    member = make_user("member@example.com")
    ms_id = add_member(org, member, "member")
    db_session.commit()
    login(client, "owner@example.com")
    response = post_form(client, f"/acme/members/{ms_id}/remove")
    assert response.status_code == 303
    assert "member@example.com" not in _members(db_session, org)
    assert "member.removed" in _audit_actions(db_session, org)


def test_a_removal_is_undone_once_with_the_role_it_had(client, db_session, org):
    """The members page after a removal offers Undo: the person is back with their role, it is
    audited, and the same undo cannot add them twice."""
    ms_id = add_member(org, make_user("member@example.com"), "admin")
    db_session.commit()
    login(client, "owner@example.com")
    post_form(client, f"/acme/members/{ms_id}/remove")
    page = client.get("/acme/members").get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    assert "is no longer a member" not in client.get("/acme/members").get_data(as_text=True)
    undo = {"csrf_token": csrf_token_from(page), "token": token}
    assert client.post("/acme/members/restore", data=undo).status_code == 303
    assert _members(db_session, org)["member@example.com"] == "admin"
    assert "member.restored" in _audit_actions(db_session, org)
    again = client.post("/acme/members/restore", data=undo, follow_redirects=True)
    assert "is already a member" in again.get_data(as_text=True)


def test_an_undo_from_another_organization_or_forged_is_refused(client, db_session, org):
    """An undo token works only in the organization it was made in, and only as signed."""
    ms_id = add_member(org, make_user("member@example.com"), "member")
    other = make_org(make_user("olga@example.com"), "Other", "other")
    add_member(other, db_session.scalar(select(User).where(User.email == "owner@example.com")), "owner")
    db_session.commit()
    login(client, "owner@example.com")
    post_form(client, f"/acme/members/{ms_id}/remove")
    page = client.get("/acme/members").get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    elsewhere = client.post(
        "/other/members/restore", data={"csrf_token": csrf_token_from(page), "token": token}
    )
    assert elsewhere.status_code == 400 and "another organization" in elsewhere.get_data(as_text=True)
    forged = client.post(
        "/acme/members/restore", data={"csrf_token": csrf_token_from(page), "token": token + "x"}
    )
    assert forged.status_code == 400
    assert "member@example.com" not in _members(db_session, org)


# --- invitations -------------------------------------------------------------------------------


def _invite(client, email="new@example.com", role="member"):
    return post_form(client, "/acme/members", "/acme/invitations", email=email, role=role)


def test_invitation_for_a_new_account(app, client, db_session, redis_client, org):
    """An invitation mail's link creates a verified account in the organization, once."""
    login(client, "owner@example.com")
    assert _invite(client, "new@example.com", "viewer").status_code == 303
    [mail] = sent_mails(redis_client, "new@example.com")
    assert "Acme" in mail.subject
    link = mail.link()

    guest = app.test_client()
    page = guest.get(link)
    assert page.status_code == 200 and "join" in page.get_data(as_text=True).lower()
    joined = post_form(guest, link + "/signup", name="Nina New", password=PASSWORD)
    assert joined.status_code == 303 and joined.headers["Location"] == "/acme/"
    assert guest.get("/acme/").status_code == 200
    assert _members(db_session, org)["new@example.com"] == "viewer"
    assert guest.get(link).status_code == 400  # works once
    assert "invitation.accepted" in _audit_actions(db_session, org)


def test_invitation_for_an_existing_account(app, client, db_session, redis_client, org):
    """A user who already has an account logs in and accepts the invitation."""
    make_user("existing@example.com")
    db_session.commit()
    login(client, "owner@example.com")
    _invite(client, "existing@example.com", "admin")
    link = sent_mails(redis_client, "existing@example.com")[-1].link()
    guest = app.test_client()
    assert "Log in to accept" in guest.get(link).get_data(as_text=True)
    login(guest, "existing@example.com")
    accepted = post_form(guest, link)
    assert accepted.status_code == 303
    assert _members(db_session, org)["existing@example.com"] == "admin"


def test_revoked_and_resent_invitations(app, client, db_session, redis_client, org):
    """Revoking kills the link; resending replaces the old link with a new one."""
    login(client, "owner@example.com")
    _invite(client, "a@example.com")
    _invite(client, "b@example.com")
    with tenant_context(org.id):
        ids = {i.email: i.id for i in db_session.scalars(select(Invitation))}
    first_a = sent_mails(redis_client, "a@example.com")[-1].link()
    first_b = sent_mails(redis_client, "b@example.com")[-1].link()
    post_form(client, f"/acme/invitations/{ids['a@example.com']}/revoke")
    post_form(client, "/acme/members", f"/acme/invitations/{ids['b@example.com']}/resend")
    guest = app.test_client()
    assert guest.get(first_a).status_code == 400
    assert guest.get(first_b).status_code == 400
    assert guest.get(sent_mails(redis_client, "b@example.com")[-1].link()).status_code == 200


def test_expired_invitation_link_is_refused(app, client, db_session, redis_client, org):
    """An invitation past its expiry date cannot be used."""
    login(client, "owner@example.com")
    _invite(client, "late@example.com")
    link = sent_mails(redis_client, "late@example.com")[-1].link()
    with tenant_context(org.id):
        invitation = db_session.scalars(select(Invitation)).one()
        invitation.expires_at = utcnow() - timedelta(minutes=1)
        db_session.commit()
    response = app.test_client().get(link)
    assert response.status_code == 400
    assert "has expired" in response.get_data(as_text=True)


def test_invite_form_errors(client, db_session, org, owner):
    """Inviting a member again or a bad address is a 422 with a clear message."""
    login(client, "owner@example.com")
    bad = _invite(client, "not-an-address")
    assert bad.status_code == 422 and "Enter an email address" in bad.get_data(as_text=True)
    again = _invite(client, "owner@example.com")
    assert again.status_code == 422 and "is already a member" in again.get_data(as_text=True)
    _invite(client, "twice@example.com")
    twice = _invite(client, "twice@example.com")
    assert twice.status_code == 422 and "already has a pending invitation" in twice.get_data(as_text=True)


@pytest.mark.processes
def test_seed_demo_creates_a_usable_organization_once(migrated_env, committed_db):
    """`flask seed-demo` creates the demo organization and login once, and says how to log in."""
    from tests.conftest import run_flask

    first = run_flask(migrated_env, "seed-demo")
    second = run_flask(migrated_env, "seed-demo")
    assert first.returncode == second.returncode == 0, first.stderr
    assert "demo organization created; log in as demo@example.com" in first.stdout
    assert "demo organization present" in second.stdout


def test_audit_events_are_append_only(db_session, org):
    """Recorded audit events cannot be edited or deleted through the ORM."""
    with tenant_context(org.id):
        event = db_session.scalars(select(AuditEvent)).first()
        event.action = "rewritten"
        with pytest.raises(PermissionError):
            db_session.flush()
        db_session.rollback()
        db_session.delete(db_session.scalars(select(AuditEvent)).first())
        with pytest.raises(PermissionError):
            db_session.flush()
        db_session.rollback()
