"""Projects' own workflow states: the defaults, adding, renaming, reordering and deleting them,
closing by category, and their isolation (row-level security, the foreign key of issues)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from app.core.tenancy import tenant_context
from app.extensions import db
from app.issues import services as issues
from app.models import Issue, WorkflowState
from app.projects import workflow
from tests.conftest import DATABASE_KIND
from tests.factories import make_acme, make_beta


@pytest.fixture
def acme(db_session):
    return make_acme(projects=("WEB", "API"))


def _keys(project_key):
    return [key for key, _name in workflow.state_choices(project_key)]


def test_a_new_project_has_the_default_states_in_board_order(acme):
    """Every project starts with the six states issues always had, in their categories."""
    with tenant_context(acme.id):
        assert [(s.key, s.name, s.category) for s in workflow.states_of("WEB")] == [
            ("backlog", "Backlog", "backlog"),
            ("todo", "Todo", "unstarted"),
            ("in_progress", "In progress", "started"),
            ("in_review", "In review", "started"),
            ("done", "Done", "completed"),
            ("cancelled", "Cancelled", "cancelled"),
        ]
        assert workflow.default_state_key(acme.projects["WEB"]) == "todo"


def test_added_state_sits_at_the_end_of_its_category_and_moves_within_it(acme):
    """A new started state comes after In review; up and down move it among the started states."""
    web = acme.projects["WEB"]
    with tenant_context(acme.id):
        qa = workflow.add_state(web, "QA", "started")
        db.session.commit()
        assert qa.key == "qa"
        assert _keys("WEB") == ["backlog", "todo", "in_progress", "in_review", "qa", "done", "cancelled"]
        workflow.move_state(web, "qa", "up")
        workflow.move_state(web, "qa", "up")
        workflow.move_state(web, "qa", "up")  # already first of its category: stays
        db.session.commit()
        assert _keys("WEB") == ["backlog", "todo", "qa", "in_progress", "in_review", "done", "cancelled"]
        assert _keys("API")[2] == "in_progress"  # another project's states are its own


def test_names_are_unique_per_project_and_keys_never_change(acme):
    """Renaming keeps the key; a name already used (in any case) is refused."""
    web = acme.projects["WEB"]
    with tenant_context(acme.id):
        workflow.rename_state(web, "todo", "To do")
        db.session.commit()
        assert workflow.state_names("WEB")["todo"] == "To do"
        assert workflow.state_names("API")["todo"] == "Todo"
        with pytest.raises(workflow.WorkflowError, match="already has a state called Done"):
            workflow.add_state(web, "done", "completed")
        second = workflow.add_state(web, "To-do!", "unstarted")
        assert second.key == "to_do"


def test_closed_follows_the_category(acme):
    """An issue entering a completed or cancelled state is closed, and open again when it leaves;
    a state the project does not have is refused."""
    web = acme.projects["WEB"]
    with tenant_context(acme.id):
        workflow.add_state(web, "Shipped", "completed")
        issue = acme.add_issue("Ship it")
        assert issue.state == "todo" and issue.closed_at is None
        issues.move_issue(issue, acme.owner, "shipped")
        assert issue.closed_at is not None
        issues.update_issue(issue, acme.owner, state="in_progress")
        assert issue.closed_at is None
        with pytest.raises(issues.IssueError):
            issues.move_issue(issue, acme.owner, "nowhere")


def test_deleting_a_state_moves_its_issues_in_the_same_transaction(acme):
    """The issues of a deleted state go to the state chosen; without a choice nothing happens."""
    web = acme.projects["WEB"]
    with tenant_context(acme.id):
        workflow.add_state(web, "QA", "started")
        first, second = acme.add_issue("One", state="qa"), acme.add_issue("Two", state="qa")
        with pytest.raises(workflow.WorkflowError, match="Choose where the issues in QA go"):
            workflow.delete_state(web, "qa")
        assert workflow.delete_state(web, "qa", move_to="done") == 2
        db.session.commit()
        db.session.expire_all()
        assert {(i.state, i.closed_at is not None) for i in (first, second)} == {("done", True)}
        assert "qa" not in _keys("WEB")


def test_the_last_state_of_a_required_category_cannot_be_deleted(acme):
    """Every project keeps an unstarted and a completed state; other categories may be emptied."""
    web = acme.projects["WEB"]
    with tenant_context(acme.id):
        assert "only unstarted state" in workflow.delete_problem(web, "todo")
        with pytest.raises(workflow.WorkflowError, match="only completed state"):
            workflow.delete_state(web, "done")
        workflow.delete_state(web, "backlog")
        workflow.add_state(web, "Ready", "unstarted")
        workflow.delete_state(web, "todo")
        db.session.commit()
        assert workflow.default_state_key(web) == "ready"
        assert acme.add_issue("Starts ready").state == "ready"


def test_an_issue_cannot_take_a_state_of_another_project(acme):
    """The foreign key (tenant, project, state) refuses a key only another project has."""
    with tenant_context(acme.id):
        workflow.add_state(acme.projects["API"], "Triage", "backlog")
        issue = acme.add_issue("Web issue")
        db.session.commit()
        issue.state = "triage"
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()


def test_another_organizations_states_are_invisible(acme, db_session):
    """Through the ORM and, on PostgreSQL, through row-level security, Beta sees only its own states."""
    beta = make_beta(projects=("WEB",))
    with tenant_context(acme.id):
        workflow.add_state(acme.projects["WEB"], "Acme only", "started")
        db_session.commit()
    with tenant_context(beta.id):
        names = set(db.session.scalars(select(WorkflowState.name)))
        assert "Acme only" not in names and "Todo" in names
        assert all(s.project_key == "WEB" and s.name != "Acme only" for s in workflow.tenant_states())
        if DATABASE_KIND == "postgres":
            raw = db.session.execute(text("SELECT name FROM workflow_states")).scalars().all()
            assert "Acme only" not in raw and "Todo" in raw


def test_issue_counts_and_open_work_follow_closed_at(acme):
    """Open work is what has no closed_at, whatever its state is called."""
    web = acme.projects["WEB"]
    with tenant_context(acme.id):
        workflow.rename_state(web, "done", "Finished")
        acme.add_issue("Open")
        acme.add_issue("Closed", state="done")
        open_titles = db.session.scalars(select(Issue.title).where(Issue.closed_at.is_(None))).all()
        assert open_titles == ["Open"]
        assert workflow.issue_counts(web) == {"todo": 1, "done": 1}


def test_csv_import_matches_the_projects_states_by_name_or_key_in_any_case(acme):
    """A state cell names one of the project's states (by name or key, any case); another is left
    out with a warning listing the project's states."""
    from app.imports.rows import RowChecker

    web = acme.projects["WEB"]
    with tenant_context(acme.id):
        workflow.add_state(web, "Quality check", "started")
        checker = RowChecker(["title", "state"], ["Title", "Status"], project_id=web.id)
        assert checker.check(2, ["A", "quality CHECK"]).state == "quality_check"
        assert checker.check(3, ["B", "QUALITY_CHECK"]).state == "quality_check"
        done = checker.check(4, ["C", "done"])
        assert (done.state, done.closed) == ("done", True)
        doing = checker.check(5, ["D", "Doing"])
        assert doing.state is None
        assert [p.reason for p in doing.warnings] == [
            "state 'Doing' is not one of Backlog, Todo, In progress, In review, Quality check, Done,"
            " Cancelled"
        ]
        api = RowChecker(["title", "state"], ["Title", "Status"], project_id=acme.projects["API"].id)
        assert api.check(2, ["A", "Quality check"]).state is None


def test_reports_count_open_issues_by_state_in_a_project_and_by_category_across(acme):
    """A project's open issues by its own open states; the organization's by open category."""
    from app.reports import queries

    web = acme.projects["WEB"]
    with tenant_context(acme.id):
        workflow.add_state(web, "QA", "started")
        acme.add_issue("In QA", state="qa")
        acme.add_issue("Doing", state="in_progress", project="API")
        acme.add_issue("Done", state="done")
        by_state = {s["label"]: s["count"] for s in queries.open_by_state(web.id)}
        assert by_state == {"Backlog": 0, "Todo": 0, "In progress": 0, "In review": 0, "QA": 1}
        by_category = {s["label"]: s["count"] for s in queries.open_by_state(None)}
        assert by_category == {"Backlog": 0, "Unstarted": 0, "Started": 2}


def test_the_organizations_state_filter_names_each_key_with_its_names(acme):
    """Across projects a key is one filter value, shown with every name the projects give it."""
    with tenant_context(acme.id):
        workflow.rename_state(acme.projects["WEB"], "todo", "To do")
        workflow.add_state(acme.projects["API"], "QA", "started")
        db.session.commit()
        labels = workflow.organization_state_labels()
        assert labels["todo"] == "Todo / To do" and labels["qa"] == "QA"
        assert list(labels)[:4] == ["backlog", "todo", "in_progress", "in_review"]
