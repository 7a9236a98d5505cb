"""Job benchmark: trivial-job throughput with 1, 2 and 4 workers, and the delay a flood causes.

    .venv/bin/python -m bench.jobs                 # 2,000 jobs per throughput run, 5,000-job flood
    .venv/bin/python -m bench.jobs --jobs 500 --flood 1000

Not part of the tests. It starts its own PostgreSQL and Redis (bench/services.py), migrates an
empty database and runs the Procfile's ``flask --app wsgi worker`` processes against it.

- **throughput**: N jobs that each append a timestamp to a Redis list are queued, then W
  workers start; jobs per second = N / (last job's start - first job's start). Each job runs
  in its worker's work horse with an app context, as every job does; ``work_horses`` counts
  the processes that ran them (a horse serves up to 1,000 jobs), ``load_1min`` is the
  machine's load average before and after the run.
- **flood**: tenant A queues F jobs; once two workers are busy with them, tenant B queues
  one. Reported: seconds from B's enqueue to B's job starting, and how many of A's jobs
  started in between (the fairness bound is one per other lane with work, per worker).

Writes ``bench/results/jobs-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid

from app.core.queue.queues import job
from bench.services import Services, flask_processes, run_benchmark, say, stop_processes


@job()
def stamp_time(key: str, label: str = "") -> None:
    """The trivial job: append ``<label> <time>`` to a Redis list."""
    from app.extensions import redis_connections

    redis_connections.client().rpush(key, f"{label} {time.time()} {os.getpid()}")


def _wait(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise SystemExit(f"timed out after {timeout}s waiting for {what}")


def _enqueue(app, tenant, count: int, key: str, label: str) -> float:
    from app.core.queue.queues import enqueue
    from app.core.tenancy import tenant_context

    started = time.perf_counter()
    with app.app_context(), tenant_context(tenant):
        for _ in range(count):
            enqueue("bench.jobs.stamp_time", key, label)
    return time.perf_counter() - started


def throughput(app, env, redis, workers: int, jobs: int, log_dir) -> dict:
    redis.flushdb()
    enqueue_seconds = _enqueue(app, None, jobs, "stamps", "j")
    load_before = os.getloadavg()[0]
    processes = flask_processes(env, ["worker"] * workers, log_dir)
    try:
        _wait(lambda: redis.llen("stamps") >= jobs, 600, f"{jobs} jobs on {workers} worker(s)")
    finally:
        stop_processes(processes)
    stamps = [value.split() for value in redis.lrange("stamps", 0, -1)]
    times = sorted(float(at) for _label, at, _pid in stamps)
    span = times[-1] - times[0]
    return {
        "workers": workers,
        "jobs": jobs,
        "enqueue_per_second": round(jobs / enqueue_seconds),
        "jobs_per_second": round((jobs - 1) / span, 1) if span > 0 else None,
        "work_horses": len({pid for _label, _at, pid in stamps}),
        "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def flood(app, env, redis, flood_jobs: int, log_dir) -> dict:
    redis.flushdb()
    tenant_a, tenant_b = uuid.uuid4(), uuid.uuid4()
    enqueue_seconds = _enqueue(app, tenant_a, flood_jobs, "stamps", "a")
    processes = flask_processes(env, ["worker"] * 2, log_dir)
    try:
        _wait(lambda: redis.llen("stamps") >= 50, 120, "tenant A's jobs to run")
        before = redis.llen("stamps")
        queued_at = time.time()
        _enqueue(app, tenant_b, 1, "stamps", "b")
        _wait(lambda: any(v.startswith(b"b ") for v in redis.lrange("stamps", before, -1)), 120, "B's job")
        started = [value.decode().split() for value in redis.lrange("stamps", before, -1)]
    finally:
        stop_processes(processes)
    labels = [label for label, _at, _pid in started]
    b_index = labels.index("b")
    return {
        "flood_jobs": flood_jobs,
        "workers": 2,
        "enqueue_per_second": round(flood_jobs / enqueue_seconds),
        "b_waited_seconds": round(float(started[b_index][1]) - queued_at, 3),
        "a_jobs_started_before_b": labels[:b_index].count("a"),
        "a_jobs_left_when_b_started": flood_jobs - before - labels[:b_index].count("a"),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.jobs", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per throughput run (default 2,000)")
    parser.add_argument("--flood", type=int, default=5000, help="tenant A's flood (default 5,000)")
    parser.add_argument("--workers", default="1,2,4", help="worker counts to compare (default 1,2,4)")
    args = parser.parse_args(argv)

    def measure(services: Services, results: dict) -> None:
        app, env = services.migrated_app("jobs")
        from app.extensions import redis_connections

        redis = redis_connections.client(app)
        log_dir = services.work
        results["throughput"] = []
        for count in (int(n) for n in args.workers.split(",")):
            say(f"throughput: {args.jobs} trivial jobs, {count} worker(s)")
            results["throughput"].append(throughput(app, env, redis, count, args.jobs, log_dir))
            say(json.dumps(results["throughput"][-1]))
        say(f"flood: tenant A queues {args.flood} jobs, then tenant B one")
        results["flood"] = flood(app, env, redis, args.flood, log_dir)
        say(json.dumps(results["flood"]))

    return run_benchmark("jobs", {"settings": vars(args)}, measure)


if __name__ == "__main__":
    sys.exit(main())
