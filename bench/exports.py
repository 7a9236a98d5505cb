"""Export benchmark: time and peak memory of exporting an organization of 5,000 and of 50,000 issues.

    .venv/bin/python -m bench.exports                      # 5,000 and 50,000 issues
    .venv/bin/python -m bench.exports --sizes 2000,20000

Not part of the tests. It starts its own PostgreSQL and Redis (bench/services.py), builds one
organization per size with the benchmark's dataset builder (bench/dataset.py: issues with
their comments, history, assignees, labels, watchers and notifications), then for each runs
one export task in a Procfile worker (``flask --app wsgi worker --burst``) started fresh for
it. Peak memory is the kernel's high-water mark of the resident set (``VmHWM`` in
``/proc/<pid>/status``) of that worker and of its work horse (the forked process that runs
the job), sampled every 20 ms while they live. A burst worker running a trivial job gives
the baseline.

Writes ``bench/results/exports-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time

import psycopg

from bench import dataset
from bench.services import ROOT, VENV_BIN, Services, run_benchmark, say


def build_organization(
    services: Services, database: str, issues: int, password_hash: str, prefix: str = "export"
) -> str:
    """One organization of ``issues`` issues in four projects (slug ``<prefix>-<issues>``); returns its id."""
    with psycopg.connect(services.url("postgres", database)) as connection:
        builder = dataset.DatasetBuilder(connection, password_hash, seed=issues)
        sizes = [issues * share // 10 for share in (4, 3, 2, 1)]
        keys = (("WEB", "Website"), ("API", "Platform"), ("OPS", "Operations"), ("DOC", "Documentation"))
        org_id = builder.organization(
            f"{prefix}-{issues}",
            f"{prefix.capitalize()} {issues}",
            [(key, name, size) for (key, name), size in zip(keys, sizes, strict=True)],
            members=25,
            extra_members=[],
            rnd=random.Random(issues),
        )
        builder.flush()
    services.psql("VACUUM (ANALYZE)", database)
    return str(org_id)


def status_kib(pid: int, field: str = "VmHWM") -> int:
    """A figure of ``/proc/<pid>/status`` in KiB, by default the process's peak resident set so far
    (``VmHWM``); 0 once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(child) for child in children.read().split()]
    except OSError:
        return []


def run_worker(env: dict[str, str], log) -> tuple[float, float, float]:
    """A fresh burst worker until the queues are empty: (seconds, worker's and work horse's peak RSS, MiB).

    The peaks are the kernel's own high-water marks (``VmHWM``), read every 20 ms while the
    processes live; a forked work horse starts with its worker's resident pages.
    """
    started = time.perf_counter()
    worker = subprocess.Popen(
        [str(VENV_BIN / "flask"), "--app", "wsgi", "worker", "--burst"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=log,
    )
    worker_peak = horse_peak = 0
    while worker.poll() is None:
        worker_peak = max(worker_peak, status_kib(worker.pid))
        for child in _children(worker.pid):
            horse_peak = max(horse_peak, status_kib(child))
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    if worker.returncode != 0:
        raise SystemExit(f"the worker failed; see {log.name}")
    return seconds, round(worker_peak / 1024, 1), round(horse_peak / 1024, 1)


def export_once(app, env, org_id: str, log) -> dict:
    from app.core.queue.queues import enqueue
    from app.core.tenancy import tenant_context
    from app.extensions import db
    from app.models import Task

    with app.app_context(), tenant_context(org_id):
        task = Task(kind="export", description="Benchmark export")
        db.session.add(task)
        db.session.commit()
        task_id = task.id
        enqueue("app.exports.jobs.export_organization", str(task_id), job_id=str(task_id))
    seconds, worker_peak, horse_peak = run_worker(env, log)
    with app.app_context(), tenant_context(org_id):
        task = Task.get_scoped(db.session, task_id)
        if task.status != Task.FINISHED:
            raise SystemExit(f"the export failed: {task.error}")
        result = dict(task.result)
        job_seconds = (task.finished_at - task.started_at).total_seconds()
    return {
        "rows": result["rows"],
        "tables": result["tables"],
        "zip_mb": round(result["size"] / 2**20, 1),
        "job_seconds": round(job_seconds, 1),
        "worker_seconds": round(seconds, 1),
        "worker_peak_rss_mb": worker_peak,
        "horse_peak_rss_mb": horse_peak,
    }


def baseline(app, env, log) -> dict:
    """A burst worker that runs one trivial job: what a worker costs before any export."""
    from app.core.queue.queues import enqueue

    with app.app_context():
        enqueue("app.tasks.jobs.purge_finished_jobs")
    seconds, worker_peak, horse_peak = run_worker(env, log)
    return {
        "worker_seconds": round(seconds, 1),
        "worker_peak_rss_mb": worker_peak,
        "horse_peak_rss_mb": horse_peak,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.exports", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,50000", help="issues per organization (default 5000,50000)")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    machine = {"nproc": os.cpu_count(), "os": platform.platform(), "python": platform.python_version()}

    def measure(services: Services, results: dict) -> None:
        results["machine"].update(services.versions)
        app, env = services.migrated_app("exports")
        from app.core.security import hash_password

        password_hash = hash_password(dataset.BENCH_PASSWORD)
        with open(services.work / "worker.log", "ab") as log:
            results["baseline"] = baseline(app, env, log)
            say(f"baseline worker: {json.dumps(results['baseline'])}")
            for issues in sizes:
                say(f"building an organization of {issues:,} issues")
                started = time.perf_counter()
                org_id = build_organization(services, "exports", issues, password_hash)
                say(f"built in {time.perf_counter() - started:.1f} s; exporting")
                run = {"issues": issues, **export_once(app, env, org_id, log)}
                results["runs"].append(run)
                say(json.dumps({k: v for k, v in run.items() if k != "tables"}))

    return run_benchmark("exports", {"machine": machine, "runs": []}, measure)


if __name__ == "__main__":
    sys.exit(main())
