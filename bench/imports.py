"""CSV import benchmark: a generated file of N rows imported by one real worker against PostgreSQL.

    .venv/bin/python -m bench.imports              # 10,000 rows
    .venv/bin/python -m bench.imports --rows 2000

Not part of the tests. It starts its own PostgreSQL and Redis (bench/services.py), migrates an
empty database, creates an organization with 20 members, 10 labels and a project, generates a
CSV (title, description, state, priority, one or two assignees, labels, due date, estimate; one
row in 100 bad), stores it as an upload would, and runs one Procfile ``flask --app wsgi worker``.

Reported: seconds from the task's start to its end as the task records them (the import
itself), seconds from enqueue to finished as a member waits for it, rows per second; then the
same file imported again (every row a duplicate). Writes ``bench/results/imports-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time

from bench.jobs import _wait
from bench.services import Services, flask_processes, run_benchmark, say, stop_processes

STATES = ["Backlog", "Todo", "In progress", "in_review", "Done"]
PRIORITIES = ["Urgent", "High", "Medium", "Low", "0"]


def generate_csv(rows: int) -> bytes:
    out = io.StringIO()
    out.write("Summary,Description,Status,Priority,Assignee,Labels,Due date,Estimate\n")
    for n in range(rows):
        state = "Doing" if n % 100 == 99 else STATES[n % len(STATES)]  # one row in 100 is bad
        assignees = f"member{n % 20}@example.com" + (f"; member{(n + 7) % 20}@example.com" if n % 3 else "")
        labels = f"label{n % 10}" + (f", label{(n + 3) % 10}" if n % 2 else "")
        out.write(
            f'Issue {n}: make the widget faster,"Steps to reproduce, case {n}.",{state},'
            f'{PRIORITIES[n % 5]},"{assignees}","{labels}",2027-0{1 + n % 9}-1{n % 10},{n % 13}\n'
        )
    return out.getvalue().encode()


def _setup(app) -> tuple:
    from app.core.tenancy import tenant_context
    from app.extensions import db
    from app.models import Label, Membership, Organization, Project, User

    with app.app_context():
        org = Organization(slug="bench-import", name="Bench import")
        db.session.add(org)
        users = [
            User(email=f"member{n}@example.com", name=f"Member {n}", password_hash="!") for n in range(20)
        ]
        db.session.add_all(users)
        db.session.flush()
        with tenant_context(org.id):
            db.session.add_all([Membership(user_id=u.id, role="member") for u in users])
            db.session.add_all([Label(name=f"label{n}") for n in range(10)])
            project = Project(key="BENCH", name="Bench")
            db.session.add(project)
            db.session.commit()
            return org.id, users[0].id, project.id


def _import(app, env, org_id, user_id, project_id, content: bytes, log_dir) -> dict:
    from app.core.queue.queues import enqueue
    from app.core.tenancy import tenant_context
    from app.extensions import db
    from app.imports import services as imports
    from app.models import Task

    with app.app_context(), tenant_context(org_id):
        upload = imports.store_upload(io.BytesIO(content), "bench.csv")
        mapping = imports.guess_mapping(upload.header)
        task = Task(kind="import", description="Bench import", created_by_id=user_id)
        db.session.add(task)
        db.session.commit()
        task_id = task.id
        queued = time.perf_counter()
        arguments = (str(task_id), str(project_id), upload.token, mapping, upload.rows)
        enqueue("app.imports.jobs.import_issues", *arguments)

    def finished():
        with app.app_context(), tenant_context(org_id):
            db.session.expire_all()
            found = Task.get_scoped(db.session, task_id)
            done = found if found.done else None
            db.session.remove()
            return done

    processes = flask_processes(env, ["worker"], log_dir)
    try:
        task = _wait(finished, 1800, "the import task")
        waited = time.perf_counter() - queued
    finally:
        stop_processes(processes)
    if task.status != Task.FINISHED:
        raise SystemExit(f"the import failed: {task.error}")
    seconds = (task.finished_at - task.started_at).total_seconds()
    result = task.result["counts"]
    return {
        "rows": result["rows"],
        "imported": result["imported"],
        "imported_with_warnings": result["imported_with_warnings"],
        "duplicates": result["duplicates"],
        "bad_rows": result["rejected"],
        "import_seconds": round(seconds, 2),
        "enqueue_to_finished_seconds": round(waited, 2),
        "rows_per_second": round(result["rows"] / seconds) if seconds else None,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.imports", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="rows in the file (default 10,000)")
    args = parser.parse_args(argv)

    def measure(services: Services, results: dict) -> None:
        app, env = services.migrated_app("imports")
        org_id, user_id, project_id = _setup(app)
        content = generate_csv(args.rows)
        results["file_bytes"] = len(content)
        say(f"import: {args.rows:,} rows ({len(content):,} bytes), one worker")
        results["first"] = _import(app, env, org_id, user_id, project_id, content, services.work)
        say(json.dumps(results["first"]))
        say("the same file again (every row already imported)")
        results["again"] = _import(app, env, org_id, user_id, project_id, content, services.work)
        say(json.dumps(results["again"]))

    return run_benchmark("imports", {"settings": vars(args)}, measure)


if __name__ == "__main__":
    sys.exit(main())
