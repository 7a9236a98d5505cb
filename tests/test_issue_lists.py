"""The issue lists' filters, count and pages, and saved views shared with the organization."""

from __future__ import annotations

import re
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlsplit

import pytest
from sqlalchemy import select

from app.core.tenancy import tenant_context
from app.extensions import db
from app.models import Label, SavedView
from tests.accounts import login, post_form
from tests.factories import make_acme, make_beta
from tests.support.statements import Statements


@pytest.fixture
def acme(db_session):
    """Acme with WEB and API, labels bug and ui, Grace and Max (members), Ada (an admin), and six
    issues of different states, labels and assignees."""
    acme = make_acme(
        {"grace@example.com": "member", "max@example.com": "member", "ada@example.com": "admin"},
        projects=("WEB", "API"),
        labels=("bug", "ui"),
    )
    grace = acme.people["grace@example.com"]
    bug, ui = acme.labels["bug"].id, acme.labels["ui"].id
    acme.add_issue("Login fails", state="todo", priority=4, label_ids=[bug], assignee_ids=[grace.id])
    acme.add_issue("Slow search", state="in_progress", project="API", label_ids=[ui])
    acme.add_issue("Footer colour", state="in_progress", label_ids=[bug, ui], assignee_ids=[acme.owner.id])
    acme.add_issue("Old crash", state="done", label_ids=[bug])
    acme.add_issue("Write docs", state="backlog", project="API")
    acme.add_issue("Rate limits", state="todo", project="API", priority=1)
    db_session.commit()
    return SimpleNamespace(
        id=acme.id,
        bug=bug,
        ui=ui,
        people={email: user.id for email, user in acme.people.items()} | {"owner@example.com": acme.owner.id},
    )


def _list(client, url) -> tuple[set[str], int, str]:
    """The refs a list page shows, the number it says match, and the page."""
    response = client.get(url)
    assert response.status_code == 200, url
    html = response.get_data(as_text=True)
    total = re.search(r'id="issue-count">(\d+) issues?<', html)
    return set(re.findall(r'class="ref" href="/acme/issues/([A-Z]+-\d+)"', html)), int(total.group(1)), html


def test_each_filter_takes_several_values_any_of_which_matches(client, acme):
    """Repeated parameters: any value of a filter matches, every filter must match; the count
    says how many match."""
    login(client, "owner@example.com")
    bug, ui = acme.bug, acme.ui
    grace = acme.people["grace@example.com"]
    cases = {
        "": {"WEB-1", "API-1", "WEB-2", "WEB-3", "API-2", "API-3"},
        "state=todo&state=in_progress": {"WEB-1", "API-1", "WEB-2", "API-3"},
        f"state=todo&state=in_progress&label={bug}": {"WEB-1", "WEB-2"},
        f"label={bug}&label={ui}&state=in_progress": {"API-1", "WEB-2"},
        "priority=4&priority=1": {"WEB-1", "API-3"},
        f"assignee={grace}&assignee=me": {"WEB-1", "WEB-2"},
        "assignee=none&project=WEB": {"WEB-3"},
        "project=API&project=WEB&state=backlog": {"API-2"},
        "project=API&q=limits": {"API-3"},
    }
    for query, expected in cases.items():
        refs, total, _ = _list(client, f"/acme/issues?{query}")
        assert (refs, total) == (expected, len(expected)), query
    refs, total, html = _list(client, f"/acme/projects/API/issues?label={bug}&label={ui}")
    assert (refs, total) == ({"API-1"}, 1)
    assert "Remove filter Label: bug" in html and "Remove filter Label: ui" in html


def test_a_chip_removed_or_an_empty_filter_leads_to_the_lists_address(client, acme):
    """Without the script the form sends empty filters and the chip it removes: the answer is the
    list at its shareable address. With htmx the answer names that address (HX-Push-Url)."""
    login(client, "owner@example.com")
    sent = "/acme/issues?q=&state=todo&state=done&state=&label=&sort=updated&remove=state:done"
    tidied = client.get(sent)
    assert tidied.status_code == 303 and tidied.headers["Location"] == "/acme/issues?state=todo"
    htmx = client.get(sent, headers={"HX-Request": "true"})
    assert htmx.status_code == 200 and htmx.headers["HX-Push-Url"] == "/acme/issues?state=todo"
    assert re.search(r'id="issue-count">2 issues<', htmx.get_data(as_text=True))


def test_bad_filters_and_cursors_are_ignored_and_said_so(client, db_session, acme):
    """An unknown state, priority, sort or project, a label of another organization and a cursor
    the list did not write: the list ignores them and says so (never an error), and shows
    nothing of the other organization."""
    beta = make_beta(projects={"BET": "Beta's site"})
    with tenant_context(beta.id):
        theirs = Label(name="secret")
        db.session.add(theirs)
        db.session.flush()
        theirs_id = theirs.id
    beta.add_issue("Beta's own issue", project="BET", label_ids=[theirs_id])
    db_session.commit()
    login(client, "owner@example.com")
    checks = {
        "state=todo&state=bogus": ("There is no state “bogus”", 2),
        "priority=9": ("There is no priority “9”", 6),
        "sort=sideways": ("There is no sort order “sideways”", 6),
        "project=BET": ("There is no project “BET”", 6),
        f"label={theirs_id}": ("A label that is not one of this organization&#39;s was ignored", 6),
        "assignee=not-a-person": ("An assignee who is not a member of this organization was ignored", 6),
        "after=garbage": ("The link to that page of the list was not understood", 6),
        "before=WzEsMl0=": ("The link to that page of the list was not understood", 6),
    }
    for query, (message, count) in checks.items():
        refs, total, html = _list(client, f"/acme/issues?{query}")
        assert message in html and total == count == len(refs), query
        assert "Beta" not in html and "secret" not in html, query


def _walk(client, url, link) -> list[list[str]]:
    """The pages met following ``link`` ("Next page" or "Previous page") from ``url``."""
    pages = []
    while url:
        html = client.get(url).get_data(as_text=True)
        pages.append(re.findall(r'class="ref" href="/acme/issues/(WEB-\d+)"', html))
        found = re.search(rf'href="([^"]+)"[^>]*>{link}<', html)
        url = found.group(1).replace("&amp;", "&") if found else None
    return pages


@pytest.mark.parametrize("sort", ["updated", "created", "priority", "due", "number"])
def test_pages_go_both_ways_without_gaps_or_repeats(client, db_session, sort):
    """Next page to the end, then Previous page back: the same pages in reverse, each issue once;
    each page keeps the filters and the count of all that match."""
    acme = make_acme()
    for n in range(120):
        acme.add_issue(f"Issue {n}", priority=n % 5)
    db_session.commit()
    login(client, "owner@example.com")
    forward = _walk(client, f"/acme/projects/WEB/issues?sort={sort}", "Next page")
    assert [len(p) for p in forward] == [50, 50, 20]
    assert len({ref for page in forward for ref in page}) == 120
    html = client.get(f"/acme/projects/WEB/issues?sort={sort}").get_data(as_text=True)
    for _ in range(2):
        html = client.get(re.search(r'href="([^"]+)"[^>]*>Next page<', html).group(1).replace("&amp;", "&"))
        html = html.get_data(as_text=True)
    assert "120 issues" in html
    last = re.search(r'href="([^"]+)"[^>]*>Previous page<', html).group(1).replace("&amp;", "&")
    assert dict(parse_qsl(urlsplit(last).query)).get("sort", "updated") == sort
    backward = _walk(client, last, "Previous page")
    assert backward == forward[-2::-1]


def _view(shared: bool, db_session, acme, owner="grace@example.com", name="Grace's bugs"):
    """A saved view of ``owner``'s (its id)."""
    with tenant_context(acme.id):
        view = SavedView(user_id=acme.people[owner], name=name, filters={"state": ["todo"]}, shared=shared)
        db_session.add(view)
        db_session.commit()
        return SimpleNamespace(id=view.id)


def test_shared_views_show_for_everyone_and_personal_ones_for_their_owner(app, client, db_session, acme):
    """A shared view is listed on every member's (cached) list at once; unshared, it goes at once."""
    view = _view(True, db_session, acme)
    login(client, "max@example.com")
    assert "Grace&#39;s bugs" in _list(client, "/acme/issues")[2]
    grace = app.test_client()
    login(grace, "grace@example.com")
    page = grace.get("/acme/views").get_data(as_text=True)
    assert f'/acme/views/{view.id}"' in page
    saved = post_form(grace, "/acme/views", f"/acme/views/{view.id}", name="Grace's bugs", shared="0")
    assert saved.status_code == 303
    assert "Grace&#39;s bugs" not in _list(client, "/acme/issues")[2]
    assert client.get(f"/acme/views/{view.id}/delete").status_code == 404
    assert "Grace&#39;s bugs" in _list(grace, "/acme/issues")[2]


def test_only_its_owner_or_an_admin_changes_a_shared_view(app, client, db_session, acme):
    """Max (a member) sees Grace's shared view without controls and is refused (403, saying why)
    renaming, unsharing or deleting it; Ada (an admin) renames it; Grace deletes it."""
    view = _view(True, db_session, acme)
    login(client, "max@example.com")
    page = client.get("/acme/views").get_data(as_text=True)
    assert "Grace&#39;s bugs" in page and f"/acme/views/{view.id}" not in page
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', _list(client, "/acme/issues")[2])
    for response in (
        client.post(
            f"/acme/views/{view.id}", data={"csrf_token": token.group(1), "name": "Max's", "shared": "0"}
        ),
        client.get(f"/acme/views/{view.id}/delete"),
        client.post(f"/acme/views/{view.id}/delete", data={"csrf_token": token.group(1)}),
    ):
        assert response.status_code == 403
        assert "Only the person who saved this view, or an admin" in response.get_data(as_text=True)
    ada = app.test_client()
    login(ada, "ada@example.com")
    renamed = post_form(ada, "/acme/views", f"/acme/views/{view.id}", name="Team bugs", shared="1")
    assert renamed.status_code == 303
    grace = app.test_client()
    login(grace, "grace@example.com")
    assert post_form(grace, f"/acme/views/{view.id}/delete").status_code == 303
    with tenant_context(acme.id):
        assert db_session.scalars(select(SavedView)).all() == []


def test_renaming_to_a_name_the_owner_uses_is_refused(app, client, db_session, acme):
    """A name the owner already gives another view, or an empty one, is a 422 that says why."""
    view = _view(False, db_session, acme)
    _view(False, db_session, acme, name="Other")
    login(client, "grace@example.com")
    taken = post_form(client, "/acme/views", f"/acme/views/{view.id}", name="Other", shared="0")
    assert taken.status_code == 422 and "There is already a view named “Other”" in taken.get_data(
        as_text=True
    )
    empty = post_form(client, "/acme/views", f"/acme/views/{view.id}", name=" ", shared="0")
    assert empty.status_code == 422 and "Name the view." in empty.get_data(as_text=True)


def test_the_count_is_kept_with_the_cached_list_and_follows_the_data(app, client, acme):
    """A warm list reads nothing (no COUNT either); a new issue shows in the count at once."""
    login(client, "owner@example.com")
    url = "/acme/issues?state=todo&state=in_progress"
    assert _list(client, url)[1] == 4
    with Statements(app) as statements:
        assert _list(client, url)[1] == 4
    assert not [s for s in statements.sent if "issues" in s]
    created = post_form(
        client,
        "/acme/projects/WEB/issues/new",
        title="Another",
        description="",
        state="todo",
        priority="0",
    )
    assert created.status_code == 303
    refs, total, _ = _list(client, url)
    assert total == 5 and "WEB-4" in refs


def test_a_rename_made_meanwhile_is_not_overwritten(app, client, db_session, acme):
    """Grace loads the views screen; Ada (an admin) renames the shared view; Grace's rename from
    the page she loaded is a 409 that says so, and Ada's name stays. A form without what it was
    loaded with is refused."""
    view = _view(True, db_session, acme)
    login(client, "grace@example.com")
    html = client.get("/acme/views").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    loaded = re.search(r'name="loaded" value="([^"]+)"', html).group(1).replace("&#34;", '"')
    ada = app.test_client()
    login(ada, "ada@example.com")
    renamed = post_form(ada, "/acme/views", f"/acme/views/{view.id}", name="Ada's name", shared="1")
    assert renamed.status_code == 303
    stale = {"csrf_token": token, "loaded": loaded, "name": "Grace's name", "shared": "1"}
    refused = client.post(f"/acme/views/{view.id}", data=stale)
    assert refused.status_code == 409
    assert "The name was changed by someone else since you loaded this page" in refused.get_data(as_text=True)
    without = client.post(f"/acme/views/{view.id}", data={**stale, "loaded": ""})
    assert without.status_code == 400
    with tenant_context(acme.id):
        assert db_session.scalars(select(SavedView.name)).all() == ["Ada's name"]
