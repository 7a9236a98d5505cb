"""Due dates have a sensible range on every way in: the issue forms, the services, the CSV import."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from app.core.tenancy import tenant_context
from app.extensions import db
from app.imports.services import RowChecker, RowProblem
from app.issues import services as issues
from app.models import Issue, Project, User
from tests.accounts import login, post_form
from tests.factories import make_acme

OUT_OF_RANGE = ["0001-01-01", "1899-12-31", "3000-01-01", "9999-12-31"]
MESSAGE = "Choose a due date between 1900 and 2999."


@pytest.fixture
def acme(db_session):
    acme = make_acme()
    acme.add_issue("Has a due date", due_date=date(2027, 1, 15))
    db_session.commit()
    return acme.id


def _due(org_id):
    with tenant_context(org_id):
        db.session.expire_all()
        return db.session.scalars(select(Issue.due_date).where(Issue.number == 1)).one()


@pytest.mark.parametrize("value", OUT_OF_RANGE)
def test_the_forms_refuse_a_due_date_out_of_range(client, acme, value):
    """Creating or editing an issue with such a due date is a 422 with a clear message; nothing is stored."""
    login(client, "owner@example.com")
    created = post_form(
        client, "/acme/projects/WEB/issues/new", title="New", state="todo", priority="0", due_date=value
    )
    assert created.status_code == 422 and MESSAGE in created.get_data(as_text=True)
    edited = post_form(
        client,
        "/acme/issues/WEB-1",
        "/acme/issues/WEB-1/edit",
        title="x",
        state="todo",
        priority="0",
        due_date=value,
    )
    assert edited.status_code == 422 and MESSAGE in edited.get_data(as_text=True)
    assert _due(acme) == date(2027, 1, 15)
    with tenant_context(acme):
        assert db.session.scalars(select(Issue)).all() == [db.session.scalars(select(Issue)).one()]


def test_the_forms_accept_the_edges_of_the_range(client, acme):
    """1900-01-01 and 2999-12-31 are accepted."""
    login(client, "owner@example.com")
    for value in ("1900-01-01", "2999-12-31"):
        response = post_form(
            client,
            "/acme/issues/WEB-1",
            "/acme/issues/WEB-1/edit",
            title="Has a due date",
            state="todo",
            priority="0",
            due_date=value,
        )
        assert response.status_code == 303
        assert _due(acme) == date.fromisoformat(value)


def test_the_services_refuse_a_due_date_out_of_range(db_session, acme):
    """create_issue and update_issue refuse such dates themselves (every caller is covered)."""
    with tenant_context(acme):
        project = db_session.scalars(select(Project)).one()
        owner = db_session.scalars(select(User)).one()
        issue = db_session.scalars(select(Issue)).one()
        for value in OUT_OF_RANGE:
            with pytest.raises(issues.IssueError, match=MESSAGE):
                issues.create_issue(project, owner, "x", due_date=date.fromisoformat(value))
            with pytest.raises(issues.IssueError, match=MESSAGE):
                issues.update_issue(issue, owner, due_date=date.fromisoformat(value))
        assert issue.due_date == date(2027, 1, 15)


def test_the_csv_import_reports_a_due_date_out_of_range(db_session, acme):
    """An imported row with such a due date is reported by line, with the reason: imported
    without it and a warning, or rejected in strict mode."""
    with tenant_context(acme):
        checker, strict = RowChecker(["title", "due_date"]), RowChecker(["title", "due_date"], strict=True)
        for value in OUT_OF_RANGE:
            with pytest.raises(RowProblem, match="due date"):
                strict.check(2, ["A title", value])
            row = checker.check(2, ["A title", value])
            assert row.due_date is None
            assert any("due date" in str(warning) for warning in row.warnings)
        assert checker.check(3, ["A title", "2999-12-31"]).due_date == date(2999, 12, 31)
