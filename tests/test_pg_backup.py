"""The backup and restore drill: what people wrote through the app in one cluster is backed up by
scripts/pg-backup.sh, restored by scripts/pg-restore.sh into a new cluster, and served from there,
with its roles and row-level security as they were."""

from __future__ import annotations

import subprocess

import pytest
from flask_migrate import upgrade
from redis import Redis
from sqlalchemy import create_engine, text

from app.config import PROJECT_ROOT
from app.extensions import db
from tests.accounts import login, post_form
from tests.conftest import APP_ROLE, OWNER_ROLE
from tests.factories import OWNER, make_acme, make_beta
from tests.support.pgcluster import PostgresCluster, with_worklane_database, worklane_env

pytestmark = [pytest.mark.processes, pytest.mark.postgres_only]

DATABASE = "worklane"
BACKUP = PROJECT_ROOT / "scripts" / "pg-backup.sh"
RESTORE = PROJECT_ROOT / "scripts" / "pg-restore.sh"


@pytest.fixture
def clusters():
    """Two private clusters: A, with Worklane's roles and database, and B, new and empty."""
    with PostgresCluster.create() as a, PostgresCluster.create() as b:
        with_worklane_database(a, DATABASE)
        a.psql(f"ALTER ROLE {APP_ROLE} PASSWORD 'app-secret'")
        yield a, b


def app_on(make_app, test_env, cluster):
    return make_app(worklane_env(test_env, cluster, DATABASE))


def run(*command) -> subprocess.CompletedProcess:
    result = subprocess.run([*map(str, command)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def new_issue(client, title: str) -> str | None:
    """Create an issue in Acme's WEB project through its form; the page it redirects to, if any."""
    created = post_form(client, "/acme/projects/WEB/issues/new", title=title, state="todo", priority="0")
    return created.headers["Location"] if created.status_code == 303 else None


def issues_seen_by_the_app_role(cluster, tenant_id: str = "") -> int:
    """How many issues the app's role sees in ``cluster`` with ``tenant_id`` set (none: unset)."""
    engine = create_engine(cluster.url(DATABASE, APP_ROLE).replace("postgresql:", "postgresql+psycopg:"))
    try:
        with engine.begin() as connection:
            connection.execute(
                text("SELECT set_config('app.tenant_id', :tenant, true)"), {"tenant": tenant_id}
            )
            return connection.scalar(text("SELECT count(*) FROM issues"))
    finally:
        engine.dispose()


def test_a_backup_restored_into_a_new_cluster_is_served_with_isolation_intact(
    app, clusters, make_app, test_env, redis_url, tmp_path
):
    """Issues written through the app in cluster A, backed up and restored into new cluster B by
    the scripts, are served (and written) by the app configured for B; B's app role still sees
    only the organization set for its transaction, and no rows with none set."""
    a, b = clusters
    app_a = app_on(make_app, test_env, a)
    with app_a.app_context():
        upgrade(directory=str(PROJECT_ROOT / "migrations"))
        acme, beta = make_acme(), make_beta(projects=("WEB",))
        beta.add_issue("Beta's own")
        acme_id, beta_id = str(acme.id), str(beta.id)
        db.session.commit()
        db.session.remove()
    with app_a.test_client() as client:
        login(client, OWNER)
        assert new_issue(client, "Written before the backup") == "/acme/issues/WEB-1"

    backup = run(BACKUP, a.url(DATABASE), tmp_path / "backups").stdout.strip().splitlines()[-1]
    run(RESTORE, backup, b.url("postgres"))

    Redis.from_url(redis_url).flushdb()  # nothing served from what app A cached
    with app_on(make_app, test_env, b).test_client() as client:
        login(client, OWNER)
        page = client.get("/acme/issues/WEB-1")
        assert page.status_code == 200
        assert "Written before the backup" in page.get_data(as_text=True)
        assert new_issue(client, "Written after the restore") == "/acme/issues/WEB-2"

    assert issues_seen_by_the_app_role(b) == 0
    assert issues_seen_by_the_app_role(b, acme_id) == 2
    assert issues_seen_by_the_app_role(b, beta_id) == 1
    roles = b.psql(
        "SELECT rolname, rolsuper, rolbypassrls, rolpassword IS NOT NULL FROM pg_authid "
        f"WHERE rolname IN ('{APP_ROLE}', '{OWNER_ROLE}') ORDER BY rolname"
    ).split()
    assert roles == [f"{APP_ROLE}|f|f|t", f"{OWNER_ROLE}|f|f|f"]
    assert b.psql(
        "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'", DATABASE
    ).split() == [OWNER_ROLE]
    forced = "SELECT bool_and(relforcerowsecurity) FROM pg_class WHERE relname IN ('issues', 'projects')"
    assert b.psql(forced, DATABASE).strip() == "t"


def test_a_damaged_backup_is_refused_before_anything_is_restored(clusters, tmp_path):
    """A backup whose dump changed after it was written is refused, and the new cluster stays empty."""
    a, b = clusters
    backup = run(BACKUP, a.url(DATABASE), tmp_path / "backups").stdout.strip().splitlines()[-1]
    with open(f"{backup}/database.dump", "ab") as dump:
        dump.write(b"\0")
    refused = subprocess.run([str(RESTORE), backup, b.url("postgres")], capture_output=True, text=True)
    assert refused.returncode != 0 and "damaged" in refused.stderr
    assert b.psql(f"SELECT count(*) FROM pg_roles WHERE rolname = '{APP_ROLE}'").strip() == "0"
