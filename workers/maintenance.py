"""The maintenance step that keeps the no-job-lost promise, run by workers and the scheduler.

Every worker (between jobs) and every scheduler tick try to run it; a Redis lock that
expires after ``JOB_MAINTENANCE_SECONDS`` lets one process run it per period however many
try, and a process killed while holding it blocks nobody for longer than that. One run:

1. moves due scheduled jobs (retries that waited out their backoff) back to the front of
   their lane (``app.core.queue.lanes.LaneQueue``): they already waited their turn once;
2. cleans each priority's registries: a job whose entry in the started registry ran out —
   its worker was killed, before or while running it, and stopped sending heartbeats — is
   retried if it has retries left (after its backoff, then at the front of its lane) and
   otherwise lands in the failed registry (``AbandonedJobError``);
3. forgets workers that died without saying so.

The bound: a worker confirms each running job every ``JOB_HEARTBEAT_SECONDS``; an entry
runs out ``JOB_LOST_AFTER_SECONDS`` after the last one; a run follows within two
maintenance periods. With the defaults (5 s, 15 s, 5 s) a killed worker's job is back on
its queue, scheduled for its retry or in the failed registry within 25 seconds.
"""

from __future__ import annotations

import logging

from redis import Redis
from rq import worker_registration
from rq.job import Job
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
)
from rq.utils import current_timestamp

from app.core.queue import lanes
from app.core.queue.queues import QUEUES

log = logging.getLogger(__name__)

LOCK_KEY = "worklane:jobs:maintenance"


def enqueue_due_retries(connection: Redis) -> int:
    """Put scheduled jobs whose time has come back on their queue; returns how many."""
    moved = 0
    for priority in QUEUES:
        registry = ScheduledJobRegistry(priority, connection=connection)
        job_ids = registry.get_jobs_to_schedule(current_timestamp())
        if not job_ids:
            continue
        queue = lanes.LaneQueue(priority, connection=connection)
        with connection.pipeline() as pipeline:
            # Each goes to the front of its lane: the last due first, so the first due leads.
            for job in reversed(Job.fetch_many(job_ids, connection=connection)):
                if job is not None:
                    queue._enqueue_job(job, pipeline=pipeline, at_front=True)
                    moved += 1
            for job_id in job_ids:
                registry.remove(job_id, pipeline=pipeline)
            pipeline.execute()
    return moved


def run_maintenance(connection: Redis, period_seconds: int) -> bool:
    """Run one maintenance pass unless another process ran one this period; True if it ran."""
    if not connection.set(LOCK_KEY, "1", nx=True, ex=max(1, int(period_seconds))):
        return False
    moved = enqueue_due_retries(connection)
    recovered = 0
    for priority in QUEUES:
        queue = lanes.LaneQueue(priority, connection=connection)
        started = lanes.LaneStartedJobRegistry(priority, connection=connection)
        recovered += len(started.get_expired_job_ids())
        # RQ's clean_registries, with the started registry retrying through LaneQueue.
        FinishedJobRegistry(priority, connection=connection).cleanup()
        started.cleanup()
        FailedJobRegistry(priority, connection=connection).cleanup()
        DeferredJobRegistry(priority, connection=connection).cleanup()
        worker_registration.clean_worker_registry(queue)
    if moved or recovered:
        lanes.wake_workers(connection, tokens=moved + recovered)
        log.info("job maintenance", extra={"retries_due": moved, "abandoned_jobs": recovered})
    return True
