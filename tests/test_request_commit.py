"""One commit per request: the request handler commits once, after the view; services only flush.

The view's writes are committed when it answers with a page or a redirect, and dropped when it
raises or answers with an error. Besides the request, only jobs, the CLI and the demo data
commit (and a view that must make a row visible early, through ``commit_now``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy import select

from app.core.queue.registry import JOB_MODULES
from app.core.tenancy import tenant_context
from app.extensions import db
from app.models import Project
from app.projects import services as projects
from tests.accounts import login, make_org, make_user, post_form

ROOT = Path(__file__).resolve().parent.parent

#: Modules of app/ that commit themselves, with the reason. Any other ``.commit()`` is refused.
COMMITTING_MODULES = {
    "app/core/database.py": "the request's one commit, and commit_now",
    "app/core/queue/tracking.py": "a job's progress and outcome, committed as the job runs",
    "app/cli.py": "commands are not requests",
    "app/demo.py": "the demo data, loaded by a command",
    "app/exports/restore.py": "restoring an export, run by a command",
}
#: Modules that declare jobs (``JOB_MODULES``): jobs are not requests, they commit as they go.
JOB_MODULE_PATHS = {module.replace(".", "/") + ".py" for module in JOB_MODULES}


def _commits(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "commit"
    ]


def committing_places(root: Path) -> list[str]:
    """``path:line`` of each ``….commit()`` call in app/ outside the modules allowed to commit."""
    found = []
    for path in sorted((root / "app").rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if relative in COMMITTING_MODULES or relative in JOB_MODULE_PATHS or path.name == "jobs.py":
            continue
        found.extend(f"{relative}:{line}" for line in _commits(path))
    return found


def test_only_the_request_jobs_and_commands_commit():
    """No view or service of app/ commits: the request does, once, after the view."""
    assert committing_places(ROOT) == []


def test_the_check_catches_a_service_that_commits(tmp_path):
    """A commit in a service module is reported; one in a jobs module is not."""
    (tmp_path / "app" / "things").mkdir(parents=True)
    (tmp_path / "app" / "things" / "services.py").write_text("def save():\n    db.session.commit()\n")
    (tmp_path / "app" / "things" / "jobs.py").write_text("def run():\n    db.session.commit()\n")
    assert committing_places(tmp_path) == ["app/things/services.py:2"]


@pytest.fixture
def acme(db_session):
    owner = make_user("owner@example.com")
    org = make_org(owner, "Acme", "acme")
    db_session.commit()
    return org.id


def _project_keys(org_id) -> list[str]:
    db.session.remove()
    with tenant_context(org_id):
        return db.session.scalars(select(Project.key).order_by(Project.key)).all()


def test_a_view_that_answers_keeps_what_its_service_flushed(app, client, db_session, acme):
    """A project created through its form is stored, though the service only flushed it."""
    login(client, "owner@example.com")
    response = post_form(client, "/acme/projects/new", name="Website", key="WEB", description="")
    assert response.status_code == 303
    with app.app_context():
        assert _project_keys(acme) == ["WEB"]


def test_a_view_that_raises_after_a_flush_stores_nothing(app, client, db_session, acme, monkeypatch):
    """A service that fails after its rows were flushed leaves nothing stored: the request rolls back."""
    create = projects.create_project

    def create_then_fail(*args, **kwargs):
        create(*args, **kwargs)
        db.session.flush()
        raise RuntimeError("failed after the flush")

    monkeypatch.setattr(projects, "create_project", create_then_fail)
    login(client, "owner@example.com")
    with pytest.raises(RuntimeError, match="after the flush"):
        post_form(client, "/acme/projects/new", name="Website", key="WEB", description="")
    with app.app_context():
        assert _project_keys(acme) == []
