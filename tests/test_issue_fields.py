"""An issue's fields changed where its page shows them, each saved on its own: the forms as the page
renders them, the lost-update rules for one field, refused values, history, notifications, caches."""

from __future__ import annotations

import re
import uuid
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from app.core.tenancy import tenant_context
from app.extensions import db
from app.models import Issue, IssueActivity, Label, Notification
from tests.accounts import login
from tests.factories import make_acme, make_beta
from tests.support.forms import post_forms
from tests.test_lost_updates import Tab

PAGE = "/acme/issues/WEB-1"
FIELDS = ("state", "priority", "assignees", "labels", "due_date", "estimate")
HTMX = {"HX-Request": "true"}


@pytest.fixture
def acme(db_session):
    """Acme with Olive (owner), Grace (member), Vic (viewer), labels bug and ui, one issue WEB-1."""
    acme = make_acme(
        {"grace@example.com": "member", "vic@example.com": "viewer"},
        labels=("bug", "ui"),
    )
    acme.add_issue("Broken login", "Words.", label_ids=[acme.labels["bug"].id])
    ids = SimpleNamespace(
        id=acme.id,
        grace=str(acme.people["grace@example.com"].id),
        bug=str(acme.labels["bug"].id),
        ui=str(acme.labels["ui"].id),
    )
    db.session.commit()
    return ids


def _client(app, email):
    client = app.test_client()
    login(client, email)
    return client


def fields_of(issue: Issue) -> dict:
    """The fields changed in place, as stored: names for people and labels, the date as text."""
    return {
        "state": issue.state,
        "priority": issue.priority,
        "assignees": sorted(u.name for u in issue.assignees),
        "labels": sorted(label.name for label in issue.labels),
        "due_date": issue.due_date and issue.due_date.isoformat(),
        "estimate": issue.estimate,
    }


def _issue(acme) -> dict:
    with tenant_context(acme.id):
        db.session.expire_all()
        return fields_of(db.session.scalars(select(Issue)).one())


def _history(acme) -> list[tuple[str, str | None, str | None]]:
    with tenant_context(acme.id):
        rows = db.session.scalars(select(IssueActivity).order_by(IssueActivity.created_at))
        return [(a.field, a.old_value, a.new_value) for a in rows if a.field != "created"]


def _field(tab: Tab, name: str, headers=None, **typed):
    """Submit the page's form of the field ``name`` as rendered, with ``typed`` changes."""
    return tab.submit(f"/fields/{name}", headers=headers, **typed)


def _tab_of(client, html: str) -> Tab:
    """The forms of an answer (a page or a swapped fragment), to submit as the person would next."""
    tab = Tab.__new__(Tab)
    tab.client, tab.url, tab.forms = client, PAGE, post_forms(html, PAGE)
    return tab


def test_someone_who_may_edit_gets_a_form_per_field_and_a_reader_none(app, acme):
    """The owner's page has a Change button and a form for each field; a viewer's has neither."""
    owner = Tab(_client(app, "owner@example.com"), PAGE)
    actions = {form.action for form in owner.forms}
    assert {f"{PAGE}/fields/{name}" for name in FIELDS} <= actions
    html = _client(app, "owner@example.com").get(PAGE).get_data(as_text=True)
    for label in ("state", "priority", "assignees", "labels", "due date", "estimate"):
        assert f'Change<span class="visually-hidden"> {label}</span></button>' in html
    assert 'data-picker-create="edit-labels-new_label"' in html
    assert 'min="1900-01-01"' in html.split('id="edit-due_date"')[1].split("</form>")[0]
    reader = _client(app, "vic@example.com").get(PAGE).get_data(as_text=True)
    assert "/fields/" not in reader and "Change<span" not in reader and "data-field-edit" not in reader
    assert (
        "Broken login" in reader
        and '<dt>State</dt><dd><span class="state state--todo">Todo</span></dd>' in reader
    )


def test_a_reader_may_not_post_a_field(app, acme):
    """A viewer's post to a field's endpoint is refused and stores nothing."""
    owner_forms = Tab(_client(app, "owner@example.com"), PAGE)
    form = next(f for f in owner_forms.forms if f.action.endswith("/fields/state"))
    vic = _client(app, "vic@example.com")
    answer = vic.post(form.action, data={"state": "done", "loaded": '{"state":"todo"}'})
    assert answer.status_code in (400, 403, 404)
    assert _issue(acme)["state"] == "todo"


@pytest.mark.parametrize(
    ("name", "typed", "field", "expected"),
    [
        ("state", "in_progress", "state", "in_progress"),
        ("priority", "3", "priority", 3),
        ("due_date", "2027-03-14", "due_date", "2027-03-14"),
        ("estimate", "8", "estimate", 8),
    ],
)
def test_each_field_saved_alone_as_a_plain_form(app, acme, name, typed, field, expected):
    """A field's form, posted without script, saves that field alone and goes back to the page."""
    olive = _client(app, "owner@example.com")
    before = _issue(acme)
    answer = _field(Tab(olive, PAGE), name, **{name: typed})
    assert answer.status_code == 303 and answer.headers["Location"].endswith(PAGE)
    assert _issue(acme) == {**before, field: expected}
    assert [entry[0] for entry in _history(acme)] == [field]
    assert "Saved." in olive.get(PAGE).get_data(as_text=True)


def test_assignees_and_labels_saved_alone_with_history_and_notification(app, acme):
    """Assigning Grace in place records it and notifies her as the whole form does; labels likewise,
    and a label typed in the labels form is created and added."""
    olive = _client(app, "owner@example.com")
    assert _field(Tab(olive, PAGE), "assignees", assignees=[acme.grace]).status_code == 303
    labels = [acme.bug, acme.ui]
    assert _field(Tab(olive, PAGE), "labels", labels=labels, new_label="Needs design").status_code == 303
    assert _issue(acme)["assignees"] == ["Grace Hopper"]
    assert _issue(acme)["labels"] == ["Needs design", "bug", "ui"]
    assert _history(acme) == [
        ("assignees", None, "Grace Hopper"),
        ("labels", "bug", "Needs design, bug, ui"),
    ]
    with tenant_context(acme.id):
        kinds = db.session.scalars(
            select(Notification.kind).where(Notification.user_id == uuid.UUID(acme.grace))
        ).all()
        assert kinds == [Notification.ASSIGNED]


def test_every_field_form_as_rendered_changes_nothing(app, acme):
    """Each field's form submitted exactly as rendered saves nothing and writes no history."""
    olive = _client(app, "owner@example.com")
    before = _issue(acme)
    for name in FIELDS:
        assert _field(Tab(olive, PAGE), name).status_code == 303
        assert _field(Tab(olive, PAGE), name, headers=HTMX).status_code == 200
    assert _issue(acme) == before and _history(acme) == []


def test_with_htmx_the_details_come_back_current_with_fresh_loaded_values(app, acme):
    """After an inline save the answer is the details (not a page), with the issue's main part and
    what is announced; another person's change of another field shows in it, and the next inline
    save of that field from it is no conflict."""
    olive, grace = _client(app, "owner@example.com"), _client(app, "grace@example.com")
    a = Tab(olive, PAGE)
    assert _field(Tab(grace, PAGE), "estimate", estimate="5").status_code == 303
    answer = _field(a, "state", headers=HTMX, state="done")
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert "<html" not in html and html.lstrip().startswith('<div id="issue-fields">')
    assert '<div id="issue-main" hx-swap-oob="innerHTML">' in html and "changed state" in html
    assert '<span id="issue-fields-status" hx-swap-oob="innerHTML">State saved: Done.</span>' in html
    assert "<dt>Estimate</dt><dd>5" in html  # Grace's change, shown
    assert _issue(acme)["estimate"] == 5 and _issue(acme)["state"] == "done"
    answer = _field(_tab_of(olive, html), "estimate", headers=HTMX, estimate="13")
    assert answer.status_code == 200
    assert (_issue(acme)["state"], _issue(acme)["estimate"]) == ("done", 13)
    assert [entry[0] for entry in _history(acme)] == ["estimate", "state", "estimate"]


def test_a_change_of_another_field_is_kept_and_of_the_same_field_is_a_409(app, acme):
    """A loads; B changes the state; A changes the priority in place: both kept. A then changes the
    state from its stale page: refused (409) in place, naming B's value and keeping A's choice;
    saving again from the answer keeps A's."""
    olive, grace = _client(app, "owner@example.com"), _client(app, "grace@example.com")
    a, b = Tab(olive, PAGE), Tab(grace, PAGE)
    assert _field(b, "state", headers=HTMX, state="in_review").status_code == 200
    assert _field(a, "priority", headers=HTMX, priority="4").status_code == 200
    assert (_issue(acme)["state"], _issue(acme)["priority"]) == ("in_review", 4)
    refused = _field(a, "state", headers=HTMX, state="cancelled")
    assert refused.status_code == 409
    html = refused.get_data(as_text=True)
    assert "<html" not in html
    message = "Not saved: Grace Hopper changed the state to “In review” since you opened the page."
    assert message in html and "Your choice, “Cancelled”, is kept below" in html
    state_form = html.split('id="edit-state"')[1].split("</form>")[0]
    assert state_form.startswith(' class="field-edit is-open"')
    assert '"state":"in_review"' in state_form.replace("&#34;", '"').replace("&quot;", '"')  # loaded now
    assert '<option selected value="cancelled">' in state_form
    assert _issue(acme)["state"] == "in_review" and _issue(acme)["priority"] == 4
    assert _field(_tab_of(olive, html), "state", headers=HTMX).status_code == 200
    assert _issue(acme)["state"] == "cancelled"
    assert [entry[0] for entry in _history(acme)] == ["state", "priority", "state"]


def test_a_conflict_without_script_is_the_page_with_the_field_open(app, acme):
    """Without script the 409 is the whole page, the field's form open with the message."""
    olive, grace = _client(app, "owner@example.com"), _client(app, "grace@example.com")
    a = Tab(olive, PAGE)
    assert _field(Tab(grace, PAGE), "estimate", estimate="2").status_code == 303
    refused = _field(a, "estimate", estimate="3")
    assert refused.status_code == 409
    html = refused.get_data(as_text=True)
    assert "<html" in html and "changed the estimate to “2”" in html and 'class="field-edit is-open"' in html
    assert _issue(acme)["estimate"] == 2


@pytest.mark.parametrize("htmx", [False, True])
@pytest.mark.parametrize(
    ("name", "typed", "message"),
    [
        ("state", "nope", "Not a valid choice"),
        ("priority", "9", "Not a valid choice"),
        ("estimate", "many", "Not a valid integer value"),
        ("estimate", "5000", "Between 0 and 1000."),
        ("due_date", "0001-01-01", "Choose a due date between 1900 and 2999."),
        ("assignees", "not-a-person", "That choice is not valid."),
        ("assignees", str(uuid.UUID(int=7)), "Assignees must be members of this organization."),
        ("labels", str(uuid.UUID(int=7)), "Labels must belong to this organization."),
    ],
)
def test_a_bad_value_is_refused_in_place_and_nothing_is_stored(app, acme, htmx, name, typed, message):
    """A value the field cannot take is a 422 with the message by the field; nothing is stored."""
    before = _issue(acme)
    answer = _field(
        Tab(_client(app, "owner@example.com"), PAGE), name, headers=HTMX if htmx else {}, **{name: typed}
    )
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert message in html and "Not saved: correct the value below." in html
    assert ("<html" in html) is not htmx
    assert _issue(acme) == before and _history(acme) == []


def test_a_person_or_label_of_another_organization_is_refused(app, acme):
    """Beta's owner as an assignee, or Beta's label, is not Acme's: 422, nothing stored."""
    beta = make_beta()
    beta_owner, beta_id = str(beta.owner.id), beta.id
    with tenant_context(beta_id):
        label = Label(name="beta-only", color="red")
        db.session.add(label)
        db.session.flush()
        label_id = str(label.id)
    db.session.commit()
    olive = _client(app, "owner@example.com")
    assert _field(Tab(olive, PAGE), "assignees", assignees=[beta_owner]).status_code == 422
    assert _field(Tab(olive, PAGE), "labels", labels=[label_id]).status_code == 422
    assert _issue(acme)["assignees"] == [] and _issue(acme)["labels"] == ["bug"]


def test_an_unknown_field_or_a_garbled_form_is_refused(app, acme):
    """No such field: 404. A form without what it was loaded with: 400. Nothing stored."""
    olive = _client(app, "owner@example.com")
    tab = Tab(olive, PAGE)
    form = next(f for f in tab.forms if f.action.endswith("/fields/state"))
    data = dict(form.submission())
    assert olive.post(f"{PAGE}/fields/title", data={**data, "title": "x"}).status_code == 404
    assert olive.post(form.action, data={**data, "state": "done", "loaded": "garbled"}).status_code == 400
    assert _issue(acme)["state"] == "todo"


def test_lists_board_search_and_page_show_an_inline_change(app, acme):
    """After an inline change the issue page, the list, the board and search (all cached) show it."""
    olive = _client(app, "owner@example.com")
    for url in (
        PAGE,
        "/acme/projects/WEB/issues?state=done",
        "/acme/projects/WEB/board",
        "/acme/search?q=login",
    ):
        olive.get(url)  # cached now
    assert _field(Tab(olive, PAGE), "state", headers=HTMX, state="done").status_code == 200
    assert '<dt>State</dt><dd><span class="state state--done">Done</span>' in olive.get(PAGE).get_data(
        as_text=True
    )
    assert "Broken login" in olive.get("/acme/projects/WEB/issues?state=done").get_data(as_text=True)
    board = olive.get("/acme/projects/WEB/board").get_data(as_text=True)
    assert re.search(r'id="col-done".*?Broken login', board, re.S)
    search = olive.get("/acme/search?q=login").get_data(as_text=True)
    assert re.search(r"Broken login.*?Done", search, re.S)


def test_the_state_form_offers_the_projects_own_states_and_saves_one(app, acme):
    """A state the project added ("QA", started) is offered in place, saved, and named in the answer."""
    from app.models import Project
    from app.projects import workflow

    with tenant_context(acme.id):
        project = db.session.scalars(select(Project).where(Project.key == "WEB")).one()
        key = workflow.add_state(project, "QA", "started").key
        db.session.commit()
    olive = _client(app, "owner@example.com")
    tab = Tab(olive, PAGE)
    form = next(f for f in tab.forms if f.action.endswith("/fields/state"))
    (menu,) = [c for c in form.controls if c.tag == "select" and c.name == "state"]
    assert key in [value for value, _selected, _disabled in menu.options]
    answer = _field(tab, "state", headers=HTMX, state=key)
    assert answer.status_code == 200
    assert "State saved: QA." in answer.get_data(as_text=True)
    assert _issue(acme)["state"] == key
    assert f'<span class="state state--{key}">QA</span>' in olive.get(PAGE).get_data(as_text=True)
    refused = _field(Tab(olive, PAGE), "state", headers=HTMX, state="not-a-state")
    assert refused.status_code == 422 and _issue(acme)["state"] == key
