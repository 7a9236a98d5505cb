"""Report benchmark: how long the worker's aggregation takes, and its memory, as tenants grow.

    .venv/bin/python -m bench.reports                     # 100 organizations, 20,000 filler issues
    .venv/bin/python -m bench.reports --orgs 1000 --issues 200000 --rounds 5

Not part of the tests. It starts its own PostgreSQL and Redis (bench/services.py), builds the
benchmark dataset of ``bench/run`` (the measured organization: projects WEB 400, BIG 5,000 and
OPS 100 issues, with their history; then the fillers), and times ``app.reports.queries.compute``
as the job runs it: as the app role, inside the tenant (row-level security on), for the
measured organization's projects, the whole organization and the largest filler. Each scope is
computed ``--rounds`` times (the first round warms the caches); the median and the slowest
round are reported, with the peak of Python memory allocated during one computation
(tracemalloc): it stays flat as issues grow, since the numbers are aggregated by the database.

Writes ``bench/results/reports-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import tracemalloc

from bench.harness import build
from bench.services import Services, run_benchmark, say


def _time_scope(app, tenant_id, project_key: str | None, rounds: int) -> dict:
    from sqlalchemy import func, select

    from app.core.tenancy import tenant_context
    from app.extensions import db
    from app.models import Issue, Project
    from app.models.base import utcnow
    from app.reports import queries

    with app.app_context(), tenant_context(tenant_id):
        project_id = None
        if project_key:
            project_id = db.session.scalar(select(Project.id).where(Project.key == project_key))
        count = select(func.count()).select_from(Issue)
        if project_id:
            count = count.where(Issue.project_id == project_id)
        issues = db.session.scalar(count)
        week_start = queries.week_monday(utcnow().date())
        seconds = []
        for _ in range(rounds):
            started = time.perf_counter()
            data = queries.compute(project_id, week_start)
            seconds.append(time.perf_counter() - started)
            db.session.rollback()
        tracemalloc.start()
        queries.compute(project_id, week_start)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        db.session.rollback()
    return {
        "scope": project_key or "organization",
        "issues": issues,
        "done_in_window": sum(week["done"] for week in data["throughput"]),
        "median_ms": round(statistics.median(seconds[1:] or seconds) * 1000, 1),
        "max_ms": round(max(seconds[1:] or seconds) * 1000, 1),
        "peak_python_kib": round(peak / 1024),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reports", description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=100, help="organizations (default 100)")
    parser.add_argument("--issues", type=int, default=20_000, help="filler issues (default 20,000)")
    parser.add_argument("--rounds", type=int, default=5, help="computations per scope (default 5)")
    args = parser.parse_args(argv)

    def measure(services: Services, results: dict) -> None:
        from app.core.security import hash_password
        from bench import dataset

        filler = dataset.filler_sizes(args.orgs, args.issues)
        system = build(services, args.orgs, 0, filler, hash_password(dataset.BENCH_PASSWORD))
        env = {**system.env, "LOG_LEVEL": "WARNING"}
        os.environ.update(env)
        from sqlalchemy import func, select

        from app import create_app
        from app.config import config_from_env
        from app.core.tenancy import unscoped
        from app.extensions import db
        from app.models import Issue

        app = create_app(config_from_env())
        with app.app_context(), unscoped("benchmark: the largest filler organization"):
            largest = db.session.execute(
                select(Issue.tenant_id, func.count())
                .where(Issue.tenant_id != system.measured_org_id)
                .group_by(Issue.tenant_id)
                .order_by(func.count().desc())
                .limit(1)
            ).first()
        results["rows"] = system.rows
        results["scopes"] = []
        for tenant, key, label in (
            (system.measured_org_id, "OPS", "measured OPS"),
            (system.measured_org_id, "WEB", "measured WEB"),
            (system.measured_org_id, "BIG", "measured BIG"),
            (system.measured_org_id, None, "measured organization"),
            (largest[0], None, "largest filler organization"),
        ):
            entry = {"label": label, **_time_scope(app, tenant, key, args.rounds)}
            results["scopes"].append(entry)
            say(json.dumps(entry))

    return run_benchmark("reports", {"settings": vars(args)}, measure)


if __name__ == "__main__":
    sys.exit(main())
