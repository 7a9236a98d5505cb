"""Restoring an export into a new organization: every table read back from its declaration, and
rows that cannot be stored refused with a clear reason and nothing kept."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from sqlalchemy import func, select

from app.core.tenancy import tenant_context, unscoped
from app.exports.restore import ImportProblem, import_export
from app.exports.tables import FORMAT, FORMAT_VERSION, TABLES
from app.extensions import db
from app.models import Issue, Label, Organization, SavedView, WorkflowState
from app.models.workflow import DEFAULT_STATES
from tests.accounts import make_user

PROJECT = {
    "key": "WEB",
    "name": "Website",
    "description": "",
    "issue_counter": 1,
    "archived_at": None,
    "created_by": "owner@example.com",
    "created_at": "2026-01-01T09:00:00+00:00",
    "updated_at": "2026-01-01T09:00:00+00:00",
    "id": "old-project",
}
ISSUE = {
    "issue": "WEB-1",
    "project": "WEB",
    "number": 1,
    "title": "First",
    "description": "",
    "state": "todo",
    "priority": 2,
    "due_date": "2026-02-01",
    "estimate": None,
    "created_by": "owner@example.com",
    "created_at": "2026-01-01T09:00:00+00:00",
    "updated_at": "2026-01-01T09:00:00+00:00",
    "closed_at": None,
    "version": 1,
    "rank": 1.0,
}
#: WEB's states as an export since format version 2 holds them: the defaults.
STATES = [
    {
        "state": f"WEB:{key}",
        "project": "WEB",
        "key": key,
        "name": name,
        "category": category,
        "position": position,
        "created_at": "2026-01-01T09:00:00+00:00",
    }
    for position, (key, name, category) in enumerate(DEFAULT_STATES)
]
LABEL = {"name": "bug", "color": "#dc2626", "created_at": "2026-01-01T09:00:00+00:00", "id": "old-label"}


def _export(version: int = FORMAT_VERSION, **tables: list[dict]) -> io.BytesIO:
    """A minimal export zip of format ``version`` holding ``tables`` (every other table of that
    version empty)."""
    manifest = {"format": FORMAT, "format_version": version, "organization": {}, "members": []}
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        archive.writestr("organization.json", json.dumps(manifest))
        for table in TABLES:
            if table.read_back.since_version > version:
                continue
            rows = tables.get(table.name, [])
            archive.writestr(f"{table.name}.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    data.seek(0)
    return data


@pytest.fixture
def owner(app, db_session):
    with app.app_context():
        make_user("owner@example.com")
        yield


def _organizations() -> int:
    with unscoped("test: every organization"):
        return db.session.scalar(select(func.count()).select_from(Organization))


def test_restore_reads_every_table_back_with_new_ids(app, owner):
    """Projects, labels, issues, their links and saved views come back; old ids in filters are rewritten."""
    view = {
        "user": "owner@example.com",
        "project": "WEB",
        "name": "Bugs",
        "filters": {"label": "old-label"},
        "created_at": "2026-01-01T09:00:00+00:00",
        "id": "old-view",
    }
    source = _export(
        projects=[PROJECT],
        workflow_states=STATES,
        labels=[LABEL],
        issues=[ISSUE],
        issue_labels=[{"issue": "WEB-1", "label": "bug"}],
        issue_assignees=[{"issue": "WEB-1", "user": "gone@example.com"}],
        saved_views=[view],
    )
    report = import_export(source, "Copy", "owner@example.com")
    assert report.rows["issues"] == 1 and report.rows["issue_labels"] == 1
    assert report.rows["issue_assignees"] == 0
    assert report.unknown_people == {"gone@example.com": {"assignments skipped": 1}}
    with tenant_context(report.organization_id):
        issue = db.session.scalars(select(Issue)).one()
        label = db.session.scalars(select(Label)).one()
        assert (issue.number, issue.due_date.isoformat(), [x.name for x in issue.labels]) == (
            1,
            "2026-02-01",
            ["bug"],
        )
        assert db.session.scalars(select(SavedView)).one().filters == {"label": str(label.id)}


@pytest.mark.parametrize(
    ("tables", "reason"),
    [
        ({"issues": [{**ISSUE, "due_date": "9999-12-31"}]}, "issues.jsonl line 1: Choose a due date between"),
        ({"issues": [{**ISSUE, "due_date": "soon"}]}, "due_date 'soon' is not a date"),
        ({"issues": [{**ISSUE, "state": "lost"}]}, "line 1: state 'lost' is not one of its project's states"),
        ({"workflow_states": [{**STATES[0], "category": "doing"}]}, "category 'doing' is not one of backlog"),
        ({"issues": [{**ISSUE, "project": "OPS"}]}, "refers to project OPS, which is not in the export"),
        ({"issues": [{**ISSUE, "project": ["WEB"]}]}, "refers to project \\['WEB'\\], which is not"),
        ({"issues": [{**ISSUE, "issue": 7}]}, "issues.jsonl line 1: issue 7 is not text"),
        ({"issues": [{**ISSUE, "priority": 9}]}, "priority 9 is not one of 0 to 4"),
        ({"issues": [{**ISSUE, "priority": "high"}]}, "priority 'high' is not a whole number"),
        ({"issues": [{**ISSUE, "estimate": -1}]}, "the estimate is below 0"),
        ({"issues": [{**ISSUE, "title": "x" * 256}]}, "title is longer than 255 characters"),
        ({"issues": [{**ISSUE, "title": None}]}, "issues.jsonl line 1: title is empty"),
        ({"issues": [ISSUE, ISSUE]}, "issues.jsonl line 2: WEB-1 is in the export twice"),
        ({"issues": [{"issue": "WEB-1"}]}, "issues.jsonl line 1 has no number, title"),
        ({"issues": [["WEB-1"]]}, "issues.jsonl line 1 is not an object"),
        ({"issue_labels": [{"issue": "WEB-1", "label": "ux"}]}, "refers to label ux, which is not"),
        ({"comments": [{"issue": "WEB-9"}]}, "comments.jsonl line 1 has no body"),
        (
            {
                "saved_views": [
                    {
                        "user": "owner@example.com",
                        "project": "OPS",
                        "name": "X",
                        "filters": {},
                        "created_at": None,
                    }
                ]
            },
            "refers to project OPS",
        ),
    ],
)
def test_restore_refuses_rows_it_cannot_store_and_keeps_nothing(app, owner, tables, reason):
    """A value out of range, a dangling reference or a missing field: a clear error, nothing kept."""
    before = _organizations()
    source = _export(
        **{"projects": [PROJECT], "workflow_states": STATES, "labels": [LABEL], "issues": [ISSUE], **tables}
    )
    with pytest.raises(ImportProblem, match=reason):
        import_export(source, "Copy", "owner@example.com")
    assert _organizations() == before


def test_an_export_made_before_workflow_states_restores_with_the_default_states(app, owner):
    """A version 1 export has no workflow_states.jsonl: each project gets the six default states,
    and its issues keep theirs."""
    source = _export(
        1, projects=[PROJECT], issues=[ISSUE, {**ISSUE, "issue": "WEB-2", "number": 2, "state": "done"}]
    )
    report = import_export(source, "Copy", "owner@example.com")
    assert report.rows["workflow_states"] == 6
    with tenant_context(report.organization_id):
        assert sorted(db.session.scalars(select(WorkflowState.key))) == sorted(
            k for k, _, _ in DEFAULT_STATES
        )
        assert sorted(db.session.scalars(select(Issue.state))) == ["done", "todo"]


def test_a_projects_own_states_come_back_with_their_issues(app, owner):
    """A state the project added (QA, renamed and placed) is restored, and its issues in it."""
    qa = {**STATES[2], "state": "WEB:qa", "key": "qa", "name": "Quality check", "position": 9}
    source = _export(projects=[PROJECT], workflow_states=[*STATES, qa], issues=[{**ISSUE, "state": "qa"}])
    report = import_export(source, "Copy", "owner@example.com")
    with tenant_context(report.organization_id):
        state = db.session.scalars(select(WorkflowState).where(WorkflowState.key == "qa")).one()
        assert (state.name, state.category, state.position) == ("Quality check", "started", 9)
        assert db.session.scalars(select(Issue.state)).one() == "qa"


def test_a_restore_must_fit_the_plan_of_the_new_organization(app, owner, monkeypatch):
    """On a plan with fewer projects than the export holds nothing is stored and the reason names
    the plan; a larger plan (``--plan``) takes it."""
    monkeypatch.setitem(app.config, "DEFAULT_PLAN", "free")
    db.session.commit()  # the owner stays when the refused restore rolls back
    others = [{**PROJECT, "key": key, "id": f"old-{key}"} for key in ("API", "OPS", "MOB")]
    states = [
        {**state, "state": f"{p['key']}:{state['key']}", "project": p["key"]}
        for p in others
        for state in STATES
    ]
    source = _export(projects=[PROJECT, *others], workflow_states=STATES + states)
    with pytest.raises(
        ImportProblem, match=r"holds 4 active projects; the Free plan includes 3\. Choose a larger plan"
    ):
        import_export(source, "Copy", "owner@example.com")
    assert _organizations() == 0
    source.seek(0)
    report = import_export(source, "Copy", "owner@example.com", plan="team")
    assert report.rows["projects"] == 4
    assert db.session.get(Organization, report.organization_id).plan == "team"
