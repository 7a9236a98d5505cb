"""The schema comes only from migrations, and the migrations match the models."""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import Column, Integer, MetaData, create_engine, insert, inspect, text

from app.config import PROJECT_ROOT, normalize_database_url
from app.extensions import db
from app.issues.search_sql import include_in_schema_comparison
from app.models.base import utcnow
from tests.conftest import DATABASE_KIND

MIGRATIONS = str(PROJECT_ROOT / "migrations")


def schema_differences(connection, metadata) -> list:
    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            "render_as_batch": connection.dialect.name == "sqlite",
            # as migrations/env.py does for `flask db migrate`
            "include_name": include_in_schema_comparison,
        },
    )
    return compare_metadata(context, metadata)


def test_models_match_migrations(app):
    """Autogenerate finds nothing to change after upgrading to head: every model change has a migration."""
    with app.app_context(), db.engine.connect() as connection:
        assert schema_differences(connection, db.metadata) == []


def test_model_drift_is_detected(app):
    """The comparison does see a model change that has no migration (the check above can fail)."""
    drifted = MetaData(naming_convention=db.metadata.naming_convention)
    for table in db.metadata.tables.values():
        table.to_metadata(drifted)
    next(iter(drifted.tables.values())).append_column(Column("added_without_migration", Integer))
    with app.app_context(), db.engine.connect() as connection:
        differences = schema_differences(connection, drifted)
    assert any(diff[0] == "add_column" and diff[3].name == "added_without_migration" for diff in differences)


def test_application_code_never_creates_tables():
    """No create_all in application code: the schema changes only through migrations."""
    offenders = []
    for folder in ("app", "workers"):
        for path in (PROJECT_ROOT / folder).rglob("*.py"):
            if "create_all(" in path.read_text():
                offenders.append(str(path.relative_to(PROJECT_ROOT)))
    assert offenders == []


def test_single_migration_head():
    """The migration history has exactly one head (no unmerged branches)."""
    assert len(ScriptDirectory(MIGRATIONS).get_heads()) == 1


@pytest.fixture
def scratch_database_url(tmp_path):
    """An empty database of the run's kind, dropped afterwards."""
    if DATABASE_KIND == "sqlite":
        yield f"sqlite:///{tmp_path / 'scratch.db'}"
        return
    admin_url = normalize_database_url(os.environ["TEST_POSTGRES_URL"])
    name = f"worklane_scratch_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_every_migration_upgrades_downgrades_and_upgrades_again(migrated_env, make_app, scratch_database_url):
    """Each revision in order: upgrade, downgrade one step, upgrade again; base leaves no tables."""
    app = make_app({**migrated_env, "DATABASE_URL": scratch_database_url})
    script = ScriptDirectory(MIGRATIONS)
    revisions = [rev.revision for rev in reversed(list(script.walk_revisions()))]
    assert revisions, "no migrations found"
    with app.app_context():
        for revision in revisions:
            upgrade(directory=MIGRATIONS, revision=revision)
            downgrade(directory=MIGRATIONS, revision="-1")
            upgrade(directory=MIGRATIONS, revision=revision)
        with_tables = set(inspect(db.engine).get_table_names())
        assert set(db.metadata.tables) <= with_tables
        downgrade(directory=MIGRATIONS, revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade(directory=MIGRATIONS)
        with db.engine.connect() as connection:
            assert schema_differences(connection, db.metadata) == []


def _organization_as_it_was(slug: str, name: str) -> uuid.UUID:
    """An organization written with the columns organizations had at the first migration (the
    model may have more by now); its id."""
    org_id = uuid.uuid4()
    organizations = sa.table(
        "organizations",
        sa.column("id", sa.Uuid()),
        sa.column("slug", sa.String()),
        sa.column("name", sa.String()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    db.session.execute(insert(organizations).values(id=org_id, slug=slug, name=name, created_at=utcnow()))
    return org_id


def test_issue_search_migration_indexes_existing_issues(migrated_env, make_app, scratch_database_url):
    """Issues and comments written before 0004 are searchable right after the upgrade."""
    from app.core.tenancy import tenant_context
    from app.issues.search import search_issues
    from app.models.work import Comment, Issue, Project

    app = make_app({**migrated_env, "DATABASE_URL": scratch_database_url})
    with app.app_context():
        upgrade(directory=MIGRATIONS, revision="0003")
        org_id = _organization_as_it_was("before-search", "Before search")
        with tenant_context(org_id):
            project = Project(key="OLD", name="Old", states=[])  # 0003 had no workflow states
            db.session.add(project)
            db.session.flush()
            # Only the columns issues and comments had at 0003 (the models may have more by now).
            issue_id = uuid.uuid4()
            db.session.execute(
                insert(Issue.__table__).values(
                    tenant_id=org_id,
                    id=issue_id,
                    project_id=project.id,
                    number=1,
                    title="Kestrel",
                    description="Hovering",
                    state="todo",
                    priority=0,
                    created_at=utcnow(),
                    updated_at=utcnow(),
                    version=1,
                    rank=0.0,
                )
            )
            db.session.execute(
                insert(Comment.__table__).values(
                    tenant_id=org_id,
                    id=uuid.uuid4(),
                    issue_id=issue_id,
                    body="Seen at dawn",
                    created_at=utcnow(),
                    updated_at=utcnow(),
                )
            )
            db.session.commit()
        upgrade(directory=MIGRATIONS)
        with tenant_context(org_id):
            assert [search_issues(word).issue_ids for word in ("kestrel", "hovering", "dawn")] == [
                [issue_id]
            ] * 3
        db.session.remove()


def test_system_jobs_become_tasks_of_no_organization_and_back(migrated_env, make_app, scratch_database_url):
    """A system check recorded before 0010 is a task of no organization after it, a job again after."""
    from app.core.tenancy import unscoped
    from app.models import Task

    background_jobs = sa.table(
        "background_jobs",
        *(sa.column(name) for name in ("kind", "description", "status", "progress")),
        sa.column("id", sa.Uuid()),
        sa.column("result", sa.JSON()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    job_id, created_at = uuid.uuid4(), utcnow()
    app = make_app({**migrated_env, "DATABASE_URL": scratch_database_url})
    with app.app_context():
        upgrade(directory=MIGRATIONS, revision="0009_outbox")
        db.session.execute(
            insert(background_jobs).values(
                id=job_id,
                kind="system_check",
                description="System check",
                status="finished",
                progress=100,
                result={"database": "checked"},
                created_at=created_at,
            )
        )
        db.session.commit()
        upgrade(directory=MIGRATIONS, revision="0010")
        with unscoped("test: the system's own tasks"):
            task = Task.get_scoped(db.session, job_id)
            assert (task.tenant_id, task.kind, task.status, task.result, task.message) == (
                None,
                "system_check",
                "finished",
                {"database": "checked"},
                "",
            )
        db.session.rollback()
        downgrade(directory=MIGRATIONS, revision="0009_outbox")
        moved_back = db.session.execute(sa.select(background_jobs.c.id, background_jobs.c.result)).all()
        assert [tuple(row) for row in moved_back] == [(job_id, {"database": "checked"})]
        assert db.session.scalar(text("SELECT count(*) FROM tasks")) == 0
        db.session.remove()


def test_labels_differing_only_by_case_are_renamed_not_lost(migrated_env, make_app, scratch_database_url):
    """Labels written before 0014 that differ only by case keep their rows, the later ones numbered;
    another organization's label of the same name is left alone."""
    from datetime import timedelta

    from app.core.tenancy import unscoped

    labels = sa.table(
        "labels",
        sa.column("tenant_id", sa.Uuid()),
        sa.column("id", sa.Uuid()),
        sa.column("name", sa.String()),
        sa.column("color", sa.String()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    app = make_app({**migrated_env, "DATABASE_URL": scratch_database_url})
    with app.app_context(), unscoped("test: labels of two organizations before 0014"):
        upgrade(directory=MIGRATIONS, revision="0013")
        acme_id, beta_id = _organization_as_it_was("acme", "Acme"), _organization_as_it_was("beta", "Beta")
        start = utcnow()
        written = [
            (acme_id, "Bug"),
            (acme_id, "bug"),
            (acme_id, "bug (2)"),
            (acme_id, "BUG"),
            (beta_id, "bug"),
        ]
        db.session.execute(
            insert(labels),
            [
                {
                    "tenant_id": org_id,
                    "id": uuid.uuid4(),
                    "name": name,
                    "color": "#6b7280",
                    "created_at": start + timedelta(seconds=n),
                }
                for n, (org_id, name) in enumerate(written)
            ],
        )
        db.session.commit()
        upgrade(directory=MIGRATIONS)
        rows = db.session.execute(
            text("SELECT tenant_id, name, folded_name FROM labels ORDER BY created_at")
        ).all()
        names = [(uuid.UUID(str(tenant_id)) == acme_id, name, folded) for tenant_id, name, folded in rows]
        assert names == [
            (True, "Bug", "bug"),
            (True, "bug (3)", "bug (3)"),
            (True, "bug (2)", "bug (2)"),
            (True, "BUG (4)", "bug (4)"),
            (False, "bug", "bug"),
        ]
        db.session.remove()


def test_existing_audit_entries_are_chained_in_the_order_they_were_written(
    migrated_env, make_app, scratch_database_url
):
    """Audit entries written before 0023 get sequence numbers and hashes in the order they were
    written, their actor's name and email copied in; `flask audit verify` passes afterwards."""
    from datetime import timedelta

    from sqlalchemy import select

    from app.core.audit_chain import GENESIS_HASH, entry_hash
    from app.core.tenancy import unscoped
    from app.models import AuditEvent
    from tests.accounts import make_user

    app = make_app({**migrated_env, "DATABASE_URL": scratch_database_url})
    with app.app_context(), unscoped("test: audit entries of an organization before 0023"):
        upgrade(directory=MIGRATIONS, revision="0022")
        acme_id = _organization_as_it_was("acme", "Acme")
        actor = make_user("grace@example.com", name="Grace Hopper")
        start = utcnow()
        written = [("test.third", 2), ("test.first", 0), ("test.second", 1)]
        db.session.execute(
            insert(AuditEvent.__table__),  # only the columns entries had at 0022
            [
                {
                    "tenant_id": acme_id,
                    "id": uuid.uuid4(),
                    "actor_id": actor.id,
                    "action": action,
                    "data": {"n": seconds},
                    "created_at": start + timedelta(seconds=seconds),
                }
                for action, seconds in written
            ],
        )
        db.session.commit()
        upgrade(directory=MIGRATIONS)
        entries = db.session.scalars(select(AuditEvent).order_by(AuditEvent.sequence)).all()
        assert [e.action for e in entries] == ["test.first", "test.second", "test.third"]
        assert [e.sequence for e in entries] == [1, 2, 3]
        assert {(e.actor_name, e.actor_email) for e in entries} == {("Grace Hopper", "grace@example.com")}
        assert [e.prev_hash for e in entries] == [GENESIS_HASH, entries[0].hash, entries[1].hash]
        assert all(e.hash == entry_hash(e) for e in entries)
        db.session.remove()
    result = app.test_cli_runner().invoke(args=["audit", "verify"])  # as the command runs: scoped
    assert result.exit_code == 0, result.output
    assert "acme: ok (3 entries, 0 checkpoints)" in result.output
    with app.app_context():
        db.session.remove()


@pytest.mark.processes
@pytest.mark.postgres_only
def test_grant_app_role_lets_a_new_login_role_use_the_tables(migrated_env):
    """`flask grant-app-role ROLE` (run as the owner) gives a fresh login role use of every table."""
    from tests.conftest import run_flask

    role = f"worklane_probe_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        normalize_database_url(os.environ["TEST_POSTGRES_URL"]), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS"))
    try:
        refused = run_flask(migrated_env, "grant-app-role", "bad name; drop table users")
        assert refused.returncode == 2 and "not a plain role name" in refused.stderr
        result = run_flask(migrated_env, "grant-app-role", role)
        assert result.returncode == 0, result.stderr
        with admin.connect() as connection:
            allowed = connection.execute(
                text(
                    "SELECT bool_and(has_table_privilege(:role, tablename, 'SELECT,INSERT,UPDATE,DELETE')) "
                    "FROM pg_tables WHERE schemaname = 'public'"
                ),
                {"role": role},
            ).scalar()
            searches = connection.execute(
                text("SELECT has_function_privilege(:role, 'issue_search_matches(tsquery)', 'EXECUTE')"),
                {"role": role},
            ).scalar()
        assert allowed is True
        assert searches is True
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP OWNED BY {role}"))
            connection.execute(text(f"DROP ROLE {role}"))
        admin.dispose()


def test_workflow_states_migration_keeps_every_issue_and_what_hangs_off_it(
    migrated_env, make_app, scratch_database_url
):
    """0020 seeds each project's six states, closes closed issues by closed_at, and rebuilding
    issues (on SQLite) keeps their comments, labels and history: nothing cascades away."""
    from app.core.tenancy import unscoped

    app = make_app({**migrated_env, "DATABASE_URL": scratch_database_url})
    with app.app_context():
        upgrade(directory=MIGRATIONS, revision="0019")
        org_id, project_id, label_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        now = utcnow()
        rows = {
            "organizations": [{"id": org_id, "slug": "before-states", "name": "Before", "created_at": now}],
            "projects": [
                {
                    "tenant_id": org_id,
                    "id": project_id,
                    "key": "OLD",
                    "name": "Old",
                    "description": "",
                    "issue_counter": 2,
                    "created_at": now,
                    "updated_at": now,
                }
            ],
            "labels": [
                {"tenant_id": org_id, "id": label_id, "name": "bug", "folded_name": "bug", "color": "#6b7280"}
            ],
        }
        issue_ids = [uuid.uuid4(), uuid.uuid4()]
        rows["issues"] = [
            {
                "tenant_id": org_id,
                "id": issue_id,
                "project_id": project_id,
                "number": number,
                "title": f"Issue {number}",
                "description": "",
                "state": state,
                "priority": 0,
                "created_at": now,
                "updated_at": now,
                "version": 1,
                "rank": 0.0,
            }
            for number, (issue_id, state) in enumerate(zip(issue_ids, ("todo", "done"), strict=True), 1)
        ]
        rows["comments"] = [
            {
                "tenant_id": org_id,
                "id": uuid.uuid4(),
                "issue_id": i,
                "body": "Seen",
                "created_at": now,
                "updated_at": now,
            }
            for i in issue_ids
        ]
        rows["issue_labels"] = [{"tenant_id": org_id, "issue_id": i, "label_id": label_id} for i in issue_ids]
        rows["issue_activities"] = [
            {"tenant_id": org_id, "id": uuid.uuid4(), "issue_id": i, "field": "created", "created_at": now}
            for i in issue_ids
        ]
        # The models' tables: at 0019 they have every column the models have.
        with unscoped("test: rows written before 0020"):
            for name, values in rows.items():
                db.session.execute(insert(db.metadata.tables[name]), values)
            db.session.commit()
        upgrade(directory=MIGRATIONS, revision="0020")
        counts = {}
        with unscoped("test: rows after 0020"):
            for name in ("issues", "comments", "issue_labels", "issue_activities", "workflow_states"):
                counts[name] = db.session.scalar(text(f"SELECT count(*) FROM {name}"))
            closed = dict(db.session.execute(text("SELECT state, closed_at IS NOT NULL FROM issues")).all())
        db.session.remove()
    assert counts == {
        "issues": 2,
        "comments": 2,
        "issue_labels": 2,
        "issue_activities": 2,
        "workflow_states": 6,
    }
    assert closed == {"todo": False, "done": True}
