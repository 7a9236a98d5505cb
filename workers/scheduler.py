"""The scheduler process: periodic jobs, declared in one list.

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
from dataclasses import dataclass

from flask import Flask

from app.core.queue.queues import HIGH, LOW, enqueue
from app.extensions import redis_connections
from workers.maintenance import run_maintenance

log = logging.getLogger(__name__)

HEARTBEAT_KEY = "worklane:scheduler:heartbeat"


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    func: str
    every_seconds: int
    queue: str = LOW
    timeout: int | None = None

    def slot(self, now: float) -> int:
        return int(now // self.every_seconds)

    def claim_key(self, slot: int) -> str:
        return f"worklane:scheduler:claim:{self.name}:{slot}"

    def job_id(self, slot: int) -> str:
        return f"periodic-{self.name}-{slot}"


#: Every periodic job of the system. Add new ones here.
PERIODIC_JOBS: tuple[PeriodicJob, ...] = (
    PeriodicJob("purge-finished-jobs", "workers.system.purge_finished_jobs", every_seconds=3600),
    # Each organization's backup, once a day (the slot starts at midnight UTC).
    PeriodicJob("nightly-exports", "workers.exports.enqueue_nightly_exports", every_seconds=86400),
    PeriodicJob("delete-expired-exports", "workers.housekeeping.delete_expired_exports", every_seconds=3600),
    PeriodicJob(
        "delete-expired-invitations", "workers.housekeeping.delete_expired_invitations", every_seconds=86400
    ),
    PeriodicJob("delete-old-tasks", "workers.housekeeping.delete_old_tasks", every_seconds=86400),
    # Mail its delivery job did not send (Redis away at commit, a killed worker), and retries.
    PeriodicJob("sweep-outbox", "workers.mail.sweep_outbox", every_seconds=60, queue=HIGH),
    PeriodicJob("purge-sent-mail", "workers.housekeeping.purge_sent_mail", every_seconds=3600),
    PeriodicJob("purge-stale-imports", "workers.imports.purge_stale_uploads", every_seconds=24 * 3600),
    # Slots start at midnight UTC: the digests go out at the first tick of each day.
    PeriodicJob(
        "daily-digest", "workers.notifications.send_daily_digests", every_seconds=86400, timeout=1800
    ),
)


def enqueue_due(app: Flask, jobs=PERIODIC_JOBS, now: float | None = None) -> list[str]:
    """Enqueue each job whose current slot nobody has claimed yet; returns their job ids."""
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


def run_scheduler(app: Flask, jobs=PERIODIC_JOBS, once: bool = False) -> None:
    """Tick until SIGTERM/SIGINT; each tick enqueues what is due."""
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
