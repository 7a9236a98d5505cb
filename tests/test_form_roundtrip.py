"""The form-round-trip harness: every edit form, found by itself, submitted as rendered changes nothing."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from flask import redirect, render_template_string, request
from sqlalchemy import select

from app.core.tenancy import tenant_context, unscoped
from app.extensions import db
from app.issues import services as issues
from app.issues.forms import IssueForm
from app.issues.queries import issue_or_404
from app.models import Invitation, Membership, Notification, SavedView, Task
from app.models.base import utcnow
from app.orgs.context import tenant_blueprint
from app.webhooks import services as webhooks
from tests.accounts import add_member, login, make_org, make_user
from tests.factories import make_acme
from tests.form_roundtrip import ACTION_ENDPOINTS, PAGES_NOT_LOADED, Seed, page_urls, roundtrip_problems
from tests.support.forms import parse_forms

DESCRIPTION = 'First line with <b>markup</b> & "quotes".\n\n- a list item\n- @grace is mentioned\n'


@pytest.fixture
def seeded(app, db_session):
    """Acme with every kind of thing, each field filled: the owner edits it all."""
    acme = make_acme(
        {"grace@example.com": "member", "ava@example.com": "admin"},
        projects={"WEB": {"name": "Website", "description": "The public site.\nAnd its blog."}},
        labels=("bug", "ui"),
    )
    org, owner, grace = acme.org, acme.owner, acme.people["grace@example.com"]
    project, bug, ui = acme.projects["WEB"], acme.labels["bug"], acme.labels["ui"]
    other = make_org(make_user("other@example.com", name="Otto"), "Other Org", "other-org")
    add_member(other, owner, "member")
    with tenant_context(org.id):
        issue = issues.create_issue(
            project,
            owner,
            "Broken login & <signup>",
            DESCRIPTION,
            state="in_review",
            priority=3,
            assignee_ids=[owner.id, grace.id],
            label_ids=[bug.id, ui.id],
            due_date=date(2027, 3, 14),
            estimate=5,
        )
        issues.create_issue(project, grace, "Second card", "", state="todo", priority=1)
        mine = SavedView(user_id=owner.id, name="Mine", filters={"state": ["todo"]})
        db_session.add(mine)
        db_session.add(Notification(user_id=owner.id, issue_id=issue.id, kind="mentioned", excerpt="hi"))
        task = Task(kind="export", description="Export", created_by_id=owner.id)
        db_session.add(task)
        for membership in db_session.scalars(select(Membership).where(Membership.user_id == owner.id)):
            membership.email_notifications = "daily"
        db_session.flush()
        invitation = Invitation(
            email="new@example.com",
            role="member",
            invited_by_id=owner.id,
            expires_at=utcnow() + timedelta(days=7),
        )
        db_session.add(invitation)
        db_session.flush()
        ref, task_id, label_id, invitation_id = issue.ref, str(task.id), str(bug.id), str(invitation.id)
        graces = select(Membership.id).where(Membership.user_id == grace.id)
        membership_id, saved_view_id = str(db_session.scalar(graces)), str(mine.id)
    with tenant_context(other.id):
        for membership in db_session.scalars(select(Membership).where(Membership.user_id == owner.id)):
            membership.email_notifications = "off"
        db_session.flush()
    with unscoped("test: the system's own tasks"):
        job = Task(kind="system_check", description="System check")
        db_session.add(job)
        db_session.commit()
        job_id = str(job.id)
    org_id, grace_id = str(org.id), str(grace.id)
    # An app context ends with the session removed: everything above is committed first.
    with app.app_context(), tenant_context(org_id):
        endpoint = webhooks.create("http://127.0.0.1:9/hook", "Deploys", ["issue.created", "comment.created"])
        webhook_endpoint_id, webhook_delivery_id = str(endpoint.id), str(webhooks.send_test(endpoint).id)
        db_session.commit()
    return Seed(
        org_slug="acme",
        org_id=org_id,
        user_id=grace_id,
        issue_ref=ref,
        project_key="WEB",
        state="in_review",
        task_id=task_id,
        job_id=job_id,
        label_id=label_id,
        membership_id=membership_id,
        invitation_id=invitation_id,
        saved_view_id=saved_view_id,
        webhook_endpoint_id=webhook_endpoint_id,
        webhook_delivery_id=webhook_delivery_id,
    )


def test_every_edit_form_round_trips_without_changes(app, client, db_session, seeded):
    """Each edit page's forms, submitted exactly as a browser would, change nothing and write no history."""
    login(client, "owner@example.com")
    problems, submitted = roundtrip_problems(app, client, seeded)
    assert problems == [], "\n".join(problems)
    endpoints = {label.rsplit("(", 1)[1].rstrip(")") for label in submitted}
    assert {
        "issues.edit",
        "issues.move",
        "projects.settings",
        "org.settings",
        "labels.edit",
        "org.change_role",
        "auth.update_profile",
        "auth.update_notification_email",
        "webhooks.save",
    } <= endpoints


def test_the_harness_lists_are_justified_and_current(app):
    """Every exclusion names a reason, and names a rule that exists (no stale entries)."""
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    for table in (PAGES_NOT_LOADED, ACTION_ENDPOINTS):
        assert all(reason.strip() for reason in table.values())
    assert set(ACTION_ENDPOINTS) <= endpoints
    assert set(PAGES_NOT_LOADED) - {"devmail.index", "devmail.show"} <= endpoints


def test_the_parser_submits_like_a_browser():
    """Selected options, checked boxes, textareas as CRLF, the first submit button, no disabled fields."""
    html = """<form method="post" action="/x"><input type="hidden" name="h" value="1">
    <input name="t" value="a &amp; b"><input name="off" disabled value="no">
    <input type="checkbox" name="c" checked><input type="checkbox" name="u" value="x">
    <select name="s"><option value="1">One</option><option value="2" selected>Two</option></select>
    <select name="f"><option>First</option><option>Second</option></select>
    <select name="m" multiple><option value="a" selected>A</option><option value="b">B</option>
    <option value="c" selected>C</option></select>
    <textarea name="ta">
line one
line two</textarea>
    <button type="submit" name="go" value="save">Save</button><button name="other" value="2">No</button>
    </form>"""
    (form,) = parse_forms(html, "/page")
    assert form.submission() == [
        ("h", "1"),
        ("t", "a & b"),
        ("c", "on"),
        ("s", "2"),
        ("f", "First"),
        ("m", "a"),
        ("m", "c"),
        ("ta", "line one\r\nline two"),
        ("go", "save"),
    ]


def test_harness_catches_a_form_that_drops_a_field(migrated_env, make_app, db_session, seeded):
    """An edit page whose form leaves out the labels (so saving clears them) makes the harness fail."""
    app = make_app(migrated_env)
    broken = tenant_blueprint("broken", __name__, url_prefix="/broken")

    @broken.route("/issues/<issue_ref>", methods=["GET", "POST"])
    def edit_without_labels(issue_ref):
        issue = issue_or_404(issue_ref)
        form = IssueForm(data={"title": issue.title})
        if request.method == "POST":
            from flask_login import current_user

            issues.set_labels(issue, current_user, request.form.getlist("labels"))
            db.session.commit()
            return redirect(request.path, 303)
        return render_template_string(
            '<form method="post">{{ form.hidden_tag() }}{{ form.title() }}<button>Save</button></form>',
            form=form,
        )

    app.register_blueprint(broken)
    client = app.test_client()
    login(client, "owner@example.com")
    problems, submitted = roundtrip_problems(app, client, seeded)
    assert any("broken.edit_without_labels" in label for label in submitted)
    assert any("/broken/issues/" in p and "issue_labels" in p for p in problems), problems
    assert any("/broken/issues/" in p and "issue_activities" in p for p in problems), problems


def test_harness_fails_on_a_page_it_cannot_build(migrated_env, make_app, seeded):
    """A GET page whose URL arguments the harness cannot build is reported, not skipped in silence."""
    app = make_app(migrated_env)
    app.add_url_rule("/widgets/<widget_id>/edit", "widgets.edit", lambda widget_id: "")
    _, problems = page_urls(app, seeded)
    assert any("widgets.edit" in p and "<widget_id>" in p for p in problems)
