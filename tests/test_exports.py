"""Tenant export: a zip of every table made by a real worker, signed download links, the
nightly backup, and export → import into a new organization → export giving the same content."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from datetime import date

import pytest
from sqlalchemy import func, select

from app.core.queue.queues import enqueue
from app.core.queue.registry import periodic_jobs
from app.core.storage import file_store
from app.core.tenancy import tenant_context, unscoped
from app.exports.tables import TABLES
from app.extensions import db
from app.models import AuditEvent, Label, Organization, SavedView, Task, User
from tests.accounts import login, make_user, post_form
from tests.conftest import run_flask
from tests.factories import make_acme, make_beta
from workers.scheduler import enqueue_due

pytestmark = pytest.mark.processes

LINK = re.compile(r'href="(/acme/settings/export/download\?token=[^"]+)"')


def _populate(org, owner, others) -> None:
    """Projects, labels, issues with assignees, labels, watchers, comments, history, a saved view."""
    from app.issues import services as issues
    from app.projects.services import create_project

    with tenant_context(org.id):
        web = create_project(owner, "Website", "WEB", "The public site")
        ops = create_project(owner, "Operations", "OPS")
        bug = Label(name="bug", color="#dc2626")
        ux = Label(name="ux", color="#2563eb")
        db.session.add_all([bug, ux])
        db.session.flush()
        for n in range(12):
            issue = issues.create_issue(
                web if n % 3 else ops,
                owner,
                f"Issue number {n} «ünïcode», with, commas",
                description=f"Line one\nline two of {n}",
                priority=n % 5,
                assignee_ids=[str(others[n % len(others)].id)] if n % 2 else [],
                label_ids=[str(bug.id)] + ([str(ux.id)] if n % 4 == 0 else []),
                due_date=date(2026, 1, 1 + n),
                estimate=n,
            )
            if n % 3 == 0:
                formula = "=1+2 " if n == 0 else ""  # a spreadsheet would run it as a formula
                issues.add_comment(
                    issue, others[0], f"{formula}A comment on {n} for @{owner.email.split('@')[0]}"
                )
            if n % 5 == 0:
                issues.move_issue(issue, owner, "done")
        db.session.add(
            SavedView(user_id=owner.id, project_id=web.id, name="Bugs", filters={"label": str(bug.id)})
        )
        db.session.flush()


@pytest.fixture
def acme(app, committed_db):
    """Acme (owner Olive, admin Adam, member Grace) with work in it; Beta (owner Bert) beside it."""
    with app.app_context():
        acme = make_acme({"adam@example.com": "admin", "grace@example.com": "member"}, projects=())
        _populate(acme.org, acme.owner, [acme.people["grace@example.com"], acme.people["adam@example.com"]])
        make_beta()
        db.session.commit()
        return acme.id


def _export_now(app, migrated_env, email="owner@example.com"):
    """An admin starts an export on the page; a real worker makes it. Returns (client, task page)."""
    client = app.test_client()
    login(client, email)
    response = post_form(client, "/acme/settings/export")
    assert response.status_code == 303, response.get_data(as_text=True)
    task_url = response.headers["Location"]
    result = run_flask(migrated_env, "worker", "--burst")
    assert result.returncode == 0, result.stderr
    return client, task_url


def _task_result(app, org_id) -> dict:
    with app.app_context(), tenant_context(org_id):
        task = db.session.scalars(select(Task).where(Task.kind == "export")).one()
        assert task.status == "finished", task.error
        return task.result


def _table_counts(app, org_id) -> dict[str, int]:
    with app.app_context(), tenant_context(org_id):
        return {table.name: db.session.scalar(table.count()) for table in TABLES}


def test_an_export_holds_every_table_with_its_rows(app, acme, migrated_env):
    """The zip has organization.json and, per table, JSON Lines and CSV with every row."""
    _export_now(app, migrated_env)
    result = _task_result(app, acme)
    counts = _table_counts(app, acme)
    assert counts["issues"] == 12 and counts["comments"] == 4 and counts["issue_activities"] > 12
    with app.app_context():
        path = file_store().path(result["key"])
    assert path.name == result["file"] and re.fullmatch(r"acme-\d{4}-\d\d-\d\d-\d{6}\.zip", path.name)
    assert result["size"] == path.stat().st_size and result["tables"] == counts
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        assert names == {"organization.json"} | {
            f"{t.name}.{ext}" for t in TABLES for ext in ("jsonl", "csv")
        }
        manifest = json.loads(archive.read("organization.json"))
        for table in TABLES:
            lines = archive.read(f"{table.name}.jsonl").decode().splitlines()
            rows = list(csv.DictReader(io.StringIO(archive.read(f"{table.name}.csv").decode())))
            assert len(lines) == len(rows) == counts[table.name], table.name
            if lines:
                assert list(json.loads(lines[0])) == list(rows[0]), table.name
        issue = json.loads(archive.read("issues.jsonl").decode().splitlines()[0])
        comments_csv = archive.read("comments.csv").decode()
        comments_jsonl = archive.read("comments.jsonl").decode()
    # The CSV quotes what a spreadsheet would run; the JSON Lines keep the exact text.
    assert "'=1+2 A comment on 0" in comments_csv and '"=1+2 A comment on 0' in comments_jsonl
    assert manifest["format_version"] == 2 and manifest["organization"]["slug"] == "acme"
    assert manifest["tables"] == counts
    assert [(m["email"], m["role"]) for m in manifest["members"]] == [
        ("adam@example.com", "admin"),
        ("grace@example.com", "member"),
        ("owner@example.com", "owner"),
    ]
    assert issue["issue"] == "OPS-1" and issue["title"].startswith("Issue number 0 «ünïcode»")
    assert issue["due_date"] == "2026-01-01" and issue["created_by"] == "owner@example.com"
    with app.app_context(), tenant_context(acme):
        actions = db.session.scalars(select(AuditEvent.action)).all()
    assert "export.started" in actions


def test_the_download_link_serves_admins_only_and_expires(app, acme, migrated_env, monkeypatch):
    """An admin downloads through the link; a member gets 403, another organization 404; old links 410."""
    client, task_url = _export_now(app, migrated_env)
    page = client.get(task_url).get_data(as_text=True)
    link = LINK.search(page).group(1).replace("&amp;", "&")
    result = _task_result(app, acme)
    download = client.get(link)
    assert download.status_code == 200 and download.mimetype == "application/zip"
    assert f"filename={result['file']}" in download.headers["Content-Disposition"]
    assert len(download.get_data()) == result["size"]
    download.close()
    with app.app_context(), tenant_context(acme):
        assert db.session.scalar(select(func.count()).where(AuditEvent.action == "export.downloaded")) == 1

    admin = app.test_client()
    login(admin, "adam@example.com")
    with admin.get(link) as again:
        assert again.status_code == 200
    assert result["file"] in admin.get("/acme/settings/export").get_data(as_text=True)
    member = app.test_client()
    login(member, "grace@example.com")
    assert member.get(link).status_code == 403
    assert member.get("/acme/settings/export").status_code == 403
    outsider = app.test_client()
    login(outsider, "bert@example.com")
    assert outsider.get(link).status_code == 404
    assert outsider.get(link.replace("/acme/", "/beta/")).status_code == 404

    assert client.get(link[:-3] + "xyz").status_code == 404
    import itsdangerous.timed

    real_time = itsdangerous.timed.time.time
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: real_time() - 25 * 3600)
    old_page = client.get(task_url).get_data(as_text=True)
    monkeypatch.undo()
    old_link = LINK.search(old_page).group(1).replace("&amp;", "&")
    expired = client.get(old_link)
    assert expired.status_code == 410 and "expired" in expired.get_data(as_text=True)

    with app.app_context():
        file_store().delete(result["key"])
    gone = client.get(link)
    assert gone.status_code == 410 and "no longer kept" in gone.get_data(as_text=True)


def _normalized(path) -> bytes:
    """The export's content without ids, tenant, slug, names of the organization and dates of joining."""
    out = []
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("organization.json"))
        manifest.pop("exported_at")
        manifest.pop("organization")
        for member in manifest["members"]:
            member.pop("joined_at")
        out.append(json.dumps(manifest, sort_keys=True))
        for table in TABLES:
            for line in archive.read(f"{table.name}.jsonl").decode().splitlines():
                row = {k: v for k, v in json.loads(line).items() if k != "id" and not k.endswith("_id")}
                if table.name == "saved_views":
                    row["filters"] = sorted(row["filters"])  # the values are the label's ids
                out.append(f"{table.name} {json.dumps(row, sort_keys=True, ensure_ascii=False)}")
    return "\n".join(out).encode()


def test_export_import_export_round_trips(app, acme, migrated_env):
    """Importing an export as a new organization and exporting it gives the same content."""
    _export_now(app, migrated_env)
    first = _task_result(app, acme)
    with app.app_context():
        first_path = file_store().path(first["key"])
    imported = run_flask(
        migrated_env,
        "org",
        "import-export",
        str(first_path),
        "--name",
        "Acme Copy",
        "--owner",
        "owner@example.com",
    )
    assert imported.returncode == 0, imported.stderr
    assert "imported into /acme-copy/" in imported.stdout and "issues: 12" in imported.stdout
    with app.app_context(), unscoped("test: the imported organization"):
        copy = db.session.scalars(select(Organization).where(Organization.slug == "acme-copy")).one()
        olive = db.session.scalars(select(User).where(User.email == "owner@example.com")).one()
        copy_id, olive_id = copy.id, olive.id
    with app.app_context(), tenant_context(copy_id):
        task = Task(kind="export", description="Export of the copy", created_by_id=olive_id)
        db.session.add(task)
        db.session.commit()
        enqueue("app.exports.jobs.export_organization", str(task.id), job_id=str(task.id))
    assert run_flask(migrated_env, "worker", "--burst").returncode == 0
    second = _task_result(app, copy_id)
    assert second["tables"] == first["tables"]
    with app.app_context():
        second_path = file_store().path(second["key"])
    assert _normalized(second_path) == _normalized(first_path)
    with app.app_context(), tenant_context(copy_id):
        view = db.session.scalars(select(SavedView)).one()
        label = db.session.scalars(select(Label).where(Label.name == "bug")).one()
        assert view.filters == {"label": str(label.id)}


def test_import_keeps_content_of_people_without_an_account(app, acme, migrated_env, tmp_path):
    """Unknown emails get no account: their comments stay authorless, assignments go; the report says so."""
    _export_now(app, migrated_env)
    with app.app_context():
        source = file_store().path(_task_result(app, acme)["key"])
    # The same export on a system where Grace has no account.
    edited = tmp_path / "edited.zip"
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(edited, "w") as new:
        for item in old.namelist():
            new.writestr(item, old.read(item).replace(b"grace@example.com", b"gone@example.com"))
    result = run_flask(
        migrated_env, "org", "import-export", str(edited), "--name", "Acme Two", "--owner", "adam@example.com"
    )
    assert result.returncode == 0, result.stderr
    assert "no account for gone@example.com" in result.stdout
    assert "comments kept without author" in result.stdout, result.stdout
    with app.app_context(), unscoped("test: the imported organization"):
        assert (
            db.session.scalar(select(func.count()).select_from(User).where(User.email == "gone@example.com"))
            == 0
        )
        two = db.session.scalars(select(Organization).where(Organization.slug == "acme-two")).one().id
    counts = _table_counts(app, two)
    assert counts["comments"] == 4 and counts["issues"] == 12


def test_import_refuses_what_is_not_an_export(app, committed_db, migrated_env, tmp_path):
    """A file that is not an export, or an unknown owner, imports nothing and says why."""
    with app.app_context():
        make_user("owner@example.com")
        db.session.commit()
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    result = run_flask(
        migrated_env, "org", "import-export", str(junk), "--name", "X", "--owner", "owner@example.com"
    )
    assert result.returncode != 0 and "not a zip archive" in result.stderr
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("readme.txt", "hello")
    result = run_flask(
        migrated_env, "org", "import-export", str(empty), "--name", "X", "--owner", "owner@example.com"
    )
    assert result.returncode != 0 and "no organization.json" in result.stderr
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Organization)) == 0


def test_nightly_exports_back_up_every_organization_once_a_day(app, acme, migrated_env):
    """The daily job exports each organization once (started by nobody); run again that day, nothing more."""
    nightly = next(job for job in periodic_jobs() if job.name == "nightly-exports")
    with app.app_context():
        assert len(enqueue_due(app, [nightly])) == 1
    assert run_flask(migrated_env, "worker", "--burst").returncode == 0
    with app.app_context():
        enqueue("app.exports.jobs.enqueue_nightly_exports", job_id="again-the-same-day")
    assert run_flask(migrated_env, "worker", "--burst").returncode == 0
    with app.app_context(), unscoped("test: every organization's tasks"):
        tasks = db.session.scalars(select(Task)).all()
        orgs = dict(db.session.execute(select(Organization.id, Organization.slug)).all())
    assert sorted(orgs[t.tenant_id] for t in tasks) == ["acme", "beta"]
    assert all(t.status == "finished" and t.created_by_id is None and t.result["nightly"] for t in tasks)
    with app.app_context():
        files = [f for org_id in orgs for f in file_store().list(f"t/{org_id}/exports")]
    assert sorted(f.key.rsplit("/", 1)[1][:5] for f in files) == ["acme-", "beta-"]
    assert all(f.key.endswith("-nightly.zip") for f in files)
