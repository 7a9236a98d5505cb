"""Labels, managed: the settings screen (admins create, rename, recolour, delete), the issue form's
"new label" field (members), names unique whatever their case, and every page showing the change."""

from __future__ import annotations

import re
import threading
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select, text
from werkzeug.datastructures import MultiDict

from app.core.tenancy import tenant_context
from app.labels import services as label_services
from app.models import AuditEvent, Issue, Label
from app.models.labels import LABEL_COLORS
from tests.accounts import browser_login, login
from tests.factories import make_acme, make_beta
from tests.support.forms import parse_forms
from tests.support.workers import wait_for

LABELS = "/acme/settings/labels"


@pytest.fixture
def acme(db_session):
    """Acme with an admin (ava@), a member (grace@) and a viewer, labels bug and ui, and WEB-1
    carrying both and WEB-2 carrying bug; Beta beside it."""
    team = make_acme(
        {"ava@example.com": "admin", "grace@example.com": "member", "vic@example.com": "viewer"},
        labels=("bug", "ui"),
    )
    bug, ui = team.labels["bug"], team.labels["ui"]
    team.add_issue("Broken login", label_ids=[bug.id, ui.id])
    team.add_issue("Slow search", label_ids=[bug.id])
    make_beta()
    db_session.commit()
    return team.ref


def _labels(db_session, org_id) -> dict[str, str]:
    """The organization's labels: name -> colour."""
    with tenant_context(org_id):
        db_session.expire_all()
        return {label.name: label.color for label in db_session.scalars(select(Label))}


def _label_id(db_session, org_id, name: str) -> str:
    with tenant_context(org_id):
        return str(db_session.scalars(select(Label.id).where(Label.name == name)).one())


def _issue_labels(db_session, org_id) -> dict[int, list[str]]:
    """Each issue's number -> the names of its labels."""
    with tenant_context(org_id):
        db_session.expire_all()
        return {
            issue.number: [label.name for label in issue.labels]
            for issue in db_session.scalars(select(Issue))
        }


def _submit(client, page_url: str, action_path: str | None = None, **changes):
    """Open ``page_url``, take the form posting to ``action_path`` (the page itself by default) as
    rendered, change the named values as a person would (a radio's value: the one they pick), and
    submit it as a browser does."""
    page = client.get(page_url)
    assert page.status_code == 200, (page_url, page.status_code)
    wanted = action_path or urlsplit(page_url).path
    forms = [f for f in parse_forms(page.get_data(as_text=True), page_url) if f.method == "POST"]
    (form,) = [f for f in forms if urlsplit(f.action).path == wanted]
    pairs = [(name, changes.get(name, value)) for name, value in form.submission()]
    sent = {name for name, _ in pairs}
    pairs += [(name, value) for name, value in changes.items() if name not in sent]
    method, action = form.target()
    return client.open(action, method=method, data=MultiDict(pairs))


def _audit_actions(db_session, org_id) -> list[tuple[str, dict]]:
    with tenant_context(org_id):
        events = db_session.scalars(select(AuditEvent).where(AuditEvent.action.like("label.%")))
        return sorted((event.action, event.data) for event in events)


# --- the settings screen ------------------------------------------------------------------------


def test_settings_link_to_the_labels_screen_with_colours_and_issue_counts(client, db_session, acme):
    """The organization's settings link to the labels screen, which lists each label with its colour
    and how many issues carry it."""
    login(client, "grace@example.com")
    assert 'href="/acme/settings/labels"' in client.get("/acme/settings").get_data(as_text=True)
    html = client.get(LABELS).get_data(as_text=True)
    rows = re.findall(
        r'<tr>\s*<td><span class="label-swatch label--(\w+)".*?</td>\s*<td><a [^>]*>(\d+) issues?</a>',
        html,
        re.S,
    )
    names = re.findall(r'<span class="label-name">([^<]+)</span>', html)
    assert list(zip(names, rows, strict=True)) == [("bug", ("gray", "2")), ("ui", ("gray", "1"))]


def test_admin_creates_renames_and_recolours_labels_with_the_forms_as_rendered(client, db_session, acme):
    """An admin creates a label and then renames and recolours it through the forms as rendered;
    each change is in the audit log."""
    login(client, "ava@example.com")
    created = _submit(client, LABELS, LABELS, name="  Needs   design ", color=LABEL_COLORS["red"])
    assert created.status_code == 303 and created.headers["Location"] == LABELS
    assert _labels(db_session, acme.id) == {"bug": "#6b7280", "ui": "#6b7280", "Needs design": "#dc2626"}
    assert "label--red" in client.get(LABELS).get_data(as_text=True)

    edit_url = f"{LABELS}/{_label_id(db_session, acme.id, 'Needs design')}"
    saved = _submit(client, edit_url, name="Design", color=LABEL_COLORS["blue"])
    assert saved.status_code == 303
    assert _labels(db_session, acme.id) == {"bug": "#6b7280", "ui": "#6b7280", "Design": "#2563eb"}
    assert [action for action, _ in _audit_actions(db_session, acme.id)] == ["label.created", "label.updated"]


def test_a_colour_outside_the_palette_is_a_form_error(client, db_session, acme):
    """A colour that is not one of the palette's is refused with a message, not stored."""
    login(client, "ava@example.com")
    refused = _submit(client, LABELS, LABELS, name="Odd", color="#123456")
    assert refused.status_code == 422
    assert "Choose one of the colours shown." in refused.get_data(as_text=True)
    edit_url = f"{LABELS}/{_label_id(db_session, acme.id, 'bug')}"
    assert _submit(client, edit_url, color="red").status_code == 422
    assert _labels(db_session, acme.id) == {"bug": "#6b7280", "ui": "#6b7280"}


def test_duplicate_names_whatever_their_case_are_form_errors(client, db_session, acme):
    """Creating "BUG" beside "bug", or renaming ui to " Bug", is refused on the form (422)."""
    login(client, "ava@example.com")
    created = _submit(client, LABELS, LABELS, name="BUG")
    assert created.status_code == 422
    assert "A label named “bug” already exists." in created.get_data(as_text=True)
    renamed = _submit(client, f"{LABELS}/{_label_id(db_session, acme.id, 'ui')}", name=" Bug")
    assert renamed.status_code == 422
    assert "A label named “bug” already exists." in renamed.get_data(as_text=True)
    assert _labels(db_session, acme.id) == {"bug": "#6b7280", "ui": "#6b7280"}
    # Its own name in another case is no duplicate.
    assert _submit(client, f"{LABELS}/{_label_id(db_session, acme.id, 'bug')}", name="Bug").status_code == 303
    assert set(_labels(db_session, acme.id)) == {"Bug", "ui"}


def test_a_name_taken_at_the_same_moment_is_a_form_error_from_the_database(
    client, db_session, acme, monkeypatch
):
    """When another person's "bug" lands between the check and the insert (the check sees nothing),
    the database's unique index refuses the second one and the form says so: no 500."""
    monkeypatch.setattr(label_services, "label_named", lambda name, other_than=None: None)
    login(client, "ava@example.com")
    created = _submit(client, LABELS, LABELS, name="Bug")
    assert created.status_code == 422
    assert "A label named “Bug” already exists." in created.get_data(as_text=True)
    renamed = _submit(client, f"{LABELS}/{_label_id(db_session, acme.id, 'ui')}", name="BUG")
    assert renamed.status_code == 422
    assert _labels(db_session, acme.id) == {"bug": "#6b7280", "ui": "#6b7280"}


def test_delete_asks_first_then_takes_the_label_off_its_issues(client, db_session, acme):
    """The delete page says how many issues carry the label and deletes nothing; its confirmed form
    deletes the label and takes it off those issues, which keep their other labels."""
    login(client, "ava@example.com")
    delete_url = f"{LABELS}/{_label_id(db_session, acme.id, 'bug')}/delete"
    confirm = client.get(delete_url).get_data(as_text=True)
    assert re.search(r"It is on <strong>2 issues</strong>", confirm)
    assert set(_labels(db_session, acme.id)) == {"bug", "ui"}
    deleted = _submit(client, delete_url)
    assert deleted.status_code == 303 and deleted.headers["Location"] == LABELS
    assert "It was taken off 2 issues." in client.get(LABELS).get_data(as_text=True)
    assert set(_labels(db_session, acme.id)) == {"ui"}
    assert _issue_labels(db_session, acme.id) == {1: ["ui"], 2: []}
    assert _audit_actions(db_session, acme.id)[-1] == ("label.deleted", {"name": "bug", "issues": 2})


@pytest.mark.parametrize("email", ["grace@example.com", "vic@example.com"])
def test_members_and_viewers_see_labels_but_cannot_manage_them(client, db_session, acme, email):
    """A member or viewer sees the list without management controls; creating, editing and deleting
    answer 403 and change nothing."""
    login(client, email)
    html = client.get(LABELS).get_data(as_text=True)
    assert "bug" in html and "Create label" not in html and "/delete" not in html
    bug = _label_id(db_session, acme.id, "bug")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    for method, url, data in (
        ("POST", LABELS, {"name": "mine", "color": LABEL_COLORS["red"]}),
        ("GET", f"{LABELS}/{bug}", {}),
        ("POST", f"{LABELS}/{bug}", {"name": "renamed", "color": LABEL_COLORS["red"]}),
        ("GET", f"{LABELS}/{bug}/delete", {}),
        ("POST", f"{LABELS}/{bug}/delete", {}),
    ):
        response = client.open(url, method=method, data={"csrf_token": token, **data})
        assert response.status_code == 403, (method, url)
    assert _labels(db_session, acme.id) == {"bug": "#6b7280", "ui": "#6b7280"}
    assert _issue_labels(db_session, acme.id) == {1: ["bug", "ui"], 2: ["bug"]}


def test_another_organization_never_sees_or_touches_the_labels(client, db_session, acme):
    """Beta's owner gets 404 for Acme's labels screen, and for Acme's label ids under Beta's
    address; nothing of Acme's changes."""
    login(client, "bert@example.com")
    bug = _label_id(db_session, acme.id, "bug")
    assert client.get(LABELS).status_code == 404
    html = client.get("/beta/settings/labels").get_data(as_text=True)
    assert "bug" not in html and "No labels yet." in html
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    for method, path in (("GET", ""), ("POST", ""), ("GET", "/delete"), ("POST", "/delete")):
        url = f"/beta/settings/labels/{bug}{path}"
        response = client.open(
            url, method=method, data={"csrf_token": token, "name": "x", "color": "#6b7280"}
        )
        assert response.status_code == 404, (method, url)
    assert _labels(db_session, acme.id) == {"bug": "#6b7280", "ui": "#6b7280"}
    assert _issue_labels(db_session, acme.id) == {1: ["bug", "ui"], 2: ["bug"]}


@pytest.mark.postgres_only
def test_two_people_creating_the_same_name_at_once_end_with_one_label(app, committed_db):
    """Two transactions create "Bug" and "BUG" at the same time: the second waits on the unique
    index until the first commits, then is told the name is taken; one label remains."""
    from app.extensions import db

    with app.app_context():
        org_id = make_acme().id
        db.session.commit()
    first_written, outcome = threading.Event(), {}

    def second_person():
        with app.app_context(), tenant_context(org_id):
            first_written.wait(10)
            try:
                label_services.create_label("BUG")
                db.session.commit()
                outcome["second"] = "created"
            except label_services.LabelError as exc:
                db.session.rollback()
                outcome["second"] = str(exc)

    def second_is_waiting_on_the_index():
        with db.engine.connect() as connection:
            query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            return connection.execute(text(query)).scalar() > 0

    second = threading.Thread(target=second_person)
    second.start()
    with app.app_context():
        with tenant_context(org_id):
            label_services.create_label("Bug")  # written, not committed yet
            first_written.set()
            wait_for(second_is_waiting_on_the_index, 10, "the second insert waits for the first")
            db.session.commit()
        second.join(10)
        assert outcome == {"second": "A label named “Bug” already exists."}
        with tenant_context(org_id):
            assert [label.name for label in db.session.scalars(select(Label))] == ["Bug"]


# --- the issue form's "new label" field --------------------------------------------------------


def test_a_member_creates_a_label_from_the_new_issue_form(client, db_session, acme):
    """The new-issue form's "new label" field creates the label and puts it on the issue."""
    login(client, "grace@example.com")
    created = _submit(
        client, "/acme/projects/WEB/issues/new", title="Checkout fails", new_label=" Regression ", labels="x"
    )
    assert created.status_code == 422  # a label id that is not Acme's: refused, nothing created
    assert set(_labels(db_session, acme.id)) == {"bug", "ui"}
    created = _submit(
        client, "/acme/projects/WEB/issues/new", title="Checkout fails", new_label=" Regression "
    )
    assert created.status_code == 303 and created.headers["Location"] == "/acme/issues/WEB-3"
    assert _issue_labels(db_session, acme.id)[3] == ["Regression"]
    assert _labels(db_session, acme.id)["Regression"] == LABEL_COLORS["gray"]


def test_the_issue_page_picker_adds_a_new_label_or_the_existing_one_of_that_name(client, db_session, acme):
    """On the issue page's form, a new name creates the label and adds it; a name that exists in
    another case adds the existing label, creating no second one."""
    login(client, "grace@example.com")
    assert (
        _submit(client, "/acme/issues/WEB-2", "/acme/issues/WEB-2/edit", new_label="Backend").status_code
        == 303
    )
    assert _issue_labels(db_session, acme.id)[2] == ["Backend", "bug"]
    assert (
        _submit(client, "/acme/issues/WEB-1", "/acme/issues/WEB-1/edit", new_label="BACKEND").status_code
        == 303
    )
    assert _issue_labels(db_session, acme.id)[1] == ["Backend", "bug", "ui"]
    assert set(_labels(db_session, acme.id)) == {"Backend", "bug", "ui"}


def test_the_picker_uses_the_label_someone_created_at_the_same_moment(client, db_session, acme, monkeypatch):
    """When the same name is created by someone else between the picker's check and its insert, the
    issue gets that label: no error, no second label."""
    real = label_services.label_named
    calls = []

    def not_seen_the_first_time(name, other_than=None):
        calls.append(name)
        return None if len(calls) <= 2 else real(name, other_than)

    monkeypatch.setattr(label_services, "label_named", not_seen_the_first_time)
    login(client, "grace@example.com")
    saved = _submit(client, "/acme/issues/WEB-2", "/acme/issues/WEB-2/edit", new_label="UI")
    assert saved.status_code == 303
    assert _issue_labels(db_session, acme.id)[2] == ["bug", "ui"]
    assert set(_labels(db_session, acme.id)) == {"bug", "ui"}


# --- every page shows the change at once ------------------------------------------------------


def test_new_renamed_and_deleted_labels_show_at_once_on_the_list_issue_page_and_board(
    client, db_session, acme
):
    """With the list's filters, the issue page's picker and the board cached, a label created,
    renamed and recoloured, or deleted shows on each of them on the very next request."""
    pages = ("/acme/projects/WEB/issues", "/acme/issues/WEB-1", "/acme/projects/WEB/board")
    login(client, "ava@example.com")
    for url in pages:
        assert client.get(url).status_code == 200

    _submit(client, LABELS, LABELS, name="Frontend")
    frontend = _label_id(db_session, acme.id, "Frontend")
    for url in pages[:2]:
        assert f'<option value="{frontend}">Frontend</option>' in client.get(url).get_data(as_text=True), url

    _submit(
        client, f"{LABELS}/{_label_id(db_session, acme.id, 'bug')}", name="defect", color=LABEL_COLORS["red"]
    )
    for url in pages:
        html = client.get(url).get_data(as_text=True)
        assert '<span class="chip label--red">defect</span>' in html and ">bug<" not in html, url

    _submit(client, f"{LABELS}/{_label_id(db_session, acme.id, 'ui')}/delete")
    for url in pages:
        html = client.get(url).get_data(as_text=True)
        assert ">ui<" not in html and ">defect<" in html, url


# --- in a browser ------------------------------------------------------------------------------


@pytest.mark.browser
def test_an_admin_creates_a_label_and_it_is_in_the_issue_pages_label_field(page, app, live_server):
    """In Chromium: an admin opens Settings, then Labels, creates a green label, sees it listed,
    and finds it among the choices of the issue page's Labels field."""
    with app.app_context():
        from app.extensions import db

        team = make_acme(labels=("bug",))
        team.add_issue("Broken login")
        db.session.commit()

    browser_login(page, live_server, "owner@example.com")
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="Labels", exact=True).click()
    page.get_by_role("heading", name="Labels").wait_for()
    page.get_by_label("Name").fill("Needs design")
    page.get_by_label("Green").check()
    page.get_by_role("button", name="Create label").click()
    page.get_by_text("Label “Needs design” created.").wait_for()
    row = page.locator("#labels tr", has_text="Needs design")
    assert row.locator(".label-swatch.label--green").count() == 1
    assert row.get_by_role("link", name=re.compile("0 issues")).count() == 1

    page.goto(live_server.url + "/acme/issues/WEB-1")
    page.get_by_text("Edit issue").click()
    labels = page.get_by_role("group", name="Labels")  # the picker's choices (picker.js)
    assert labels.locator("label").all_inner_texts() == ["bug", "Needs design"]  # by name, any case
    labels.get_by_role("checkbox", name="Needs design").check()
    page.get_by_role("button", name="Save").click()
    page.locator(".issue__title").wait_for()
    page.locator(".chip", has_text="Needs design").first.wait_for()
    assert page.problems == []
