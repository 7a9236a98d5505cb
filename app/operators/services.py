"""What the operator console shows and does: queues, workers, failed jobs, the scheduler."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from datetime import datetime
from functools import wraps

from flask import abort, current_app
from flask_login import current_user
from redis import Redis
from rq import Queue, Worker
from rq.job import Job, JobStatus
from rq.utils import now

from app.core.queue import lanes
from app.core.queue.queues import QUEUES, failed_jobs, queue_depths
from app.core.queue.registry import HEARTBEAT_KEY

#: Prometheus text exposition format, version 0.0.4.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def operator_required(view):
    """Operators only; anyone else (tenant owners included) is told nothing is here: 404."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not is_operator(current_user):
            abort(404)
        return view(*args, **kwargs)

    return wrapped


class OperatorError(ValueError):
    """A refusal shown to the operator as it is."""


def is_operator(user) -> bool:
    """True when the signed-in ``user``'s email is one of ``OPERATOR_EMAILS``."""
    if not getattr(user, "is_authenticated", False):
        return False
    return user.email.strip().lower() in current_app.config["OPERATOR_EMAILS"]


def metrics_token_matches(authorization: str | None) -> bool:
    """True when the ``Authorization`` header carries ``Bearer <METRICS_TOKEN>``."""
    token = current_app.config.get("METRICS_TOKEN")
    scheme, _, given = (authorization or "").partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    hostname: str | None
    pid: int | None
    state: str
    queues: list[str]
    current_job_id: str | None
    last_heartbeat: datetime | None
    heartbeat_age_seconds: float | None


def workers_alive(connection: Redis) -> list[WorkerInfo]:
    """Every registered worker (a worker's record expires when it stops sending heartbeats)."""
    current = now()
    found = []
    for worker in Worker.all(connection=connection):
        beat = worker.last_heartbeat
        # A worker is registered a moment before it records its first state (RQ reads "?").
        state = str(getattr(worker.get_state(), "value", worker.get_state()))
        found.append(
            WorkerInfo(
                name=worker.name,
                hostname=worker.hostname,
                pid=worker.pid,
                state="starting" if state in ("", "?") else state,
                queues=worker.queue_names(),
                current_job_id=worker.get_current_job_id(),
                last_heartbeat=beat,
                heartbeat_age_seconds=round((current - beat).total_seconds(), 1) if beat else None,
            )
        )
    return sorted(found, key=lambda w: w.name)


def scheduler_heartbeat_age(connection: Redis) -> float | None:
    """Seconds since a scheduler last ticked (None: none has in the last five minutes)."""
    value = connection.get(HEARTBEAT_KEY)
    if value is None:
        return None
    try:
        return round(max(0.0, time.time() - float(value)), 1)
    except ValueError:
        return None


def overview(connection: Redis) -> dict:
    """Everything the console page shows, read from Redis."""
    return {
        "depths": queue_depths(connection),
        "workers": workers_alive(connection),
        "failed": failed_jobs(connection),
        "failed_counts": failed_counts(connection),
        "scheduler_age": scheduler_heartbeat_age(connection),
    }


def failed_counts(connection: Redis) -> dict[str, int]:
    return {priority: Queue(priority, connection=connection).failed_job_registry.count for priority in QUEUES}


def failed_job(connection: Redis, job_id: str) -> tuple[Job, str]:
    """The failed job and its priority; OperatorError when it is not in a failed registry."""
    for priority in QUEUES:
        registry = Queue(priority, connection=connection).failed_job_registry
        if connection.zscore(registry.key, job_id) is not None:
            job = Job.fetch(job_id, connection=connection) if connection.exists(Job.key_for(job_id)) else None
            if job is None:
                registry.remove(job_id)
                break
            return job, priority
    raise OperatorError("That job is not in the failed list any more.")


def retry_failed_job(connection: Redis, job_id: str) -> Job:
    """Put a failed job back on its queue: a tenant's job in that tenant's lane, as when first queued."""
    job, priority = failed_job(connection, job_id)
    registry = Queue(priority, connection=connection).failed_job_registry
    if not connection.zrem(registry.key, job.id):  # another operator was quicker
        raise OperatorError("That job is not in the failed list any more.")
    job.started_at = None
    job.ended_at = None
    job._exc_info = ""
    job._status = JobStatus.QUEUED
    job.enqueued_at = now()
    job.save()
    lane = connection.hget(job.key, lanes.LANE_FIELD)
    lane = lane.decode() if lane else lanes.lane_for(priority, job.meta.get("tenant_id"))
    lanes.requeue(connection, job.id, lane, priority)
    return job


def delete_failed_job(connection: Redis, job_id: str) -> None:
    """Forget a failed job: its record and its entry in the failed list."""
    job, _priority = failed_job(connection, job_id)
    job.delete()


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics_text(connection: Redis) -> str:
    """The queue, worker and scheduler gauges in Prometheus text format."""
    depths = queue_depths(connection)
    failed = failed_counts(connection)
    workers = workers_alive(connection)
    families = [
        (
            "worklane_queue_jobs",
            "Jobs waiting per priority, summed over every organization's lane.",
            [({"queue": p}, depths[p]["jobs"]) for p in QUEUES],
        ),
        (
            "worklane_queue_lanes",
            "Lanes (organizations, and the system lane) with jobs waiting, per priority.",
            [({"queue": p}, depths[p]["lanes"]) for p in QUEUES],
        ),
        (
            "worklane_queue_oldest_job_age_seconds",
            "Age of the oldest waiting job per priority (0 when none waits).",
            [({"queue": p}, depths[p]["oldest_age_seconds"] or 0) for p in QUEUES],
        ),
        (
            "worklane_jobs_failed",
            "Jobs in the failed registry per priority.",
            [({"queue": p}, failed[p]) for p in QUEUES],
        ),
        (
            "worklane_workers_alive",
            "Workers that sent a heartbeat recently.",
            [({}, len(workers))],
        ),
        (
            "worklane_workers_busy",
            "Workers running a job.",
            [({}, sum(1 for w in workers if w.state == "busy"))],
        ),
    ]
    scheduler_age = scheduler_heartbeat_age(connection)
    if scheduler_age is not None:
        families.append(
            (
                "worklane_scheduler_heartbeat_age_seconds",
                "Seconds since a scheduler last ticked (absent: none in five minutes).",
                [({}, scheduler_age)],
            )
        )
    lines = []
    for name, help_text, samples in families:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for labels, value in samples:
            rendered = ",".join(f'{key}="{_label(str(val))}"' for key, val in labels.items())
            lines.append(f"{name}{{{rendered}}} {value}" if rendered else f"{name} {value}")
    return "\n".join(lines) + "\n"
