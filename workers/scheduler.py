"""The scheduler process: enqueues the periodic jobs (those declared with a ``period``).

Time is cut into slots of each job's period; the first scheduler tick in a slot
claims it in Redis (``SET NX``) and enqueues the job with a job id derived from
the slot. However many scheduler processes run, each slot is enqueued once.

Each tick also tries the job maintenance pass (``workers.maintenance``), so retries and
jobs of killed workers are recovered even while every worker is busy with long jobs.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Sequence

from flask import Flask

from app.core.queue.queues import enqueue
from app.core.queue.registry import HEARTBEAT_KEY, PeriodicJob, periodic_jobs
from app.extensions import redis_connections
from workers.maintenance import run_maintenance

log = logging.getLogger(__name__)


def enqueue_due(app: Flask, jobs: Sequence[PeriodicJob] | None = None, now: float | None = None) -> list[str]:
    """Enqueue each job (default: every periodic job) whose current slot nobody has claimed yet;
    returns their job ids."""
    jobs = periodic_jobs() if jobs is None else jobs
    now = time.time() if now is None else now
    redis = redis_connections.client(app)
    enqueued = []
    for job in jobs:
        slot = job.slot(now)
        if redis.set(job.claim_key(slot), "1", nx=True, ex=job.every_seconds * 2 + 60):
            rq_job = enqueue(job.func, queue=job.queue, job_id=job.job_id(slot), timeout=job.timeout)
            enqueued.append(rq_job.id)
            log.info("periodic job enqueued", extra={"periodic": job.name, "job_id": rq_job.id})
    redis.set(HEARTBEAT_KEY, str(now), ex=300)
    return enqueued


def run_scheduler(app: Flask, jobs: Sequence[PeriodicJob] | None = None, once: bool = False) -> None:
    """Tick until SIGTERM/SIGINT; each tick enqueues what is due (default: every periodic job)."""
    jobs = periodic_jobs() if jobs is None else jobs
    stop = threading.Event()

    def _stop(signum, frame):
        log.info("scheduler stopping", extra={"signal": signum})
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)

    tick = app.config["SCHEDULER_TICK_SECONDS"]
    log.info("scheduler started", extra={"jobs": [job.name for job in jobs], "tick_seconds": tick})
    while not stop.is_set():
        with app.app_context():
            try:
                enqueue_due(app, jobs)
                # Retries due, jobs of killed workers: recovered even while every worker is busy.
                run_maintenance(redis_connections.client(app), app.config["JOB_MAINTENANCE_SECONDS"])
            except Exception:  # Redis briefly away: log, keep ticking
                log.exception("scheduler tick failed")
        if once:
            break
        stop.wait(tick)
