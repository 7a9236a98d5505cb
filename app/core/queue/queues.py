"""Queue names, the ``@job`` declaration (queue, timeout, retries, period), and the one way to enqueue.

Each job is declared at its function, in the module of the feature it serves::

    @job(LOW, timeout=600, retry=exponential_backoff(3, first_seconds=60),
         period=Period("purge-finished-jobs", every_seconds=3600))
    def purge_finished_jobs() -> int: ...

``enqueue`` refuses a function that was not declared, so a misspelled path fails at once.

Jobs take ids and plain values, never ORM objects: an object pickled into
Redis is stale by the time a worker reads it, and may carry another tenant's
state. ``enqueue`` refuses anything else.

Each job records who asked for it in ``job.meta``: ``tenant_id`` (the worker runs the job
as that tenant, or as none), ``user_id`` (the acting user, when there is one) and
``request_id``. A tenant's jobs wait in the tenant's own lane of the priority queue and
lanes are served round-robin (``app.core.queue.lanes``), so one organization's burst cannot
starve another's.

Idempotency: a job enqueued with a ``job_id`` runs once. Enqueuing the same id again,
while the job is queued, running, finished (its result is kept an hour) or failed,
returns the existing job and queues nothing. Jobs themselves check the state they are
about to change before acting, so running one twice (after a worker died mid-job and the
job was retried) changes nothing more.
"""

from __future__ import annotations

import smtplib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from flask import current_app, g, has_request_context
from redis import Redis
from rq import Queue, Retry
from rq.job import Job
from rq.timeouts import JobTimeoutException
from rq.utils import import_attribute, now

from app.core.queue import lanes
from app.core.tenancy import current_tenant_id
from app.extensions import redis_connections

HIGH = "high"
DEFAULT = "default"
LOW = "low"
#: Listening order of every worker: a worker always takes high before default before low.
QUEUES = (HIGH, DEFAULT, LOW)

#: How long a finished job's result is kept (and its id refuses a second enqueue).
RESULT_TTL_SECONDS = 3600
#: How long a failed job stays in the failed registry with its error.
FAILURE_TTL_SECONDS = 7 * 24 * 3600

_PLAIN_TYPES = (str, int, float, bool, type(None), uuid.UUID, datetime, date, Decimal)


def _check_queue(name: str) -> None:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}; queues are {', '.join(QUEUES)}")


def exponential_backoff(retries: int, first_seconds: int, factor: int = 3) -> Retry:
    """``retries`` retries, the first after ``first_seconds``, each wait ``factor`` times the last."""
    return Retry(max=retries, interval=[first_seconds * factor**n for n in range(retries)])


def any_error(exc: BaseException) -> bool:
    return True


def not_a_task_error(exc: BaseException) -> bool:
    """A ``TaskError`` (a missing file, an archived project) will fail again; anything else may not."""
    from app.core.queue.tracking import TaskError

    return not isinstance(exc, TaskError)


def transient_mail_error(exc: BaseException) -> bool:
    """Connection trouble, timeouts and 4xx answers are worth retrying; 5xx answers are final."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return False
    if isinstance(exc, smtplib.SMTPResponseException):
        return not 500 <= exc.smtp_code < 600
    return isinstance(exc, OSError | JobTimeoutException)


@dataclass(frozen=True)
class Period:
    """A periodic job's schedule: its name (part of the scheduler's Redis claim keys) and period."""

    name: str
    every_seconds: int


@dataclass(frozen=True)
class JobKind:
    """How one job function is queued and run: priority, timeout, retries, and its period if any."""

    queue: str = DEFAULT
    #: Seconds before the work horse is stopped (None: ``RQ_JOB_TIMEOUT``).
    timeout: int | None = None
    #: Retries after a failure, and after the job's worker died (None: it fails at once).
    retry: Retry | None = None
    #: Which errors are retried; any other error fails the job at once.
    transient: Callable[[BaseException], bool] = field(default=any_error)
    #: Set for a periodic job: the scheduler enqueues it once per period.
    period: Period | None = None


#: How a job queued around :func:`enqueue` (straight through RQ) is run by the worker.
DEFAULT_KIND = JobKind()

#: Every declared job, by function path (``module.name``); filled by :func:`job`.
_DECLARED: dict[str, JobKind] = {}


class UndeclaredJob(LookupError):
    """A function that is not a declared job (no ``@job``), or a path that names no function."""


def job(
    queue: str = DEFAULT,
    *,
    timeout: int | None = None,
    retry: Retry | None = None,
    transient: Callable[[BaseException], bool] = any_error,
    period: Period | None = None,
) -> Callable[[Callable], Callable]:
    """Declare the decorated function a job: its queue, timeout, retries, transient errors, period.

    Only declared functions can be enqueued. The module must be listed in
    ``app.core.queue.registry.JOB_MODULES`` so the worker and the scheduler know it.
    """
    _check_queue(queue)
    kind = JobKind(queue=queue, timeout=timeout, retry=retry, transient=transient, period=period)

    def declare(func: Callable) -> Callable:
        _DECLARED[job_path(func)] = kind
        return func

    return declare


def declared_jobs() -> dict[str, JobKind]:
    """Every job declared so far (in the modules imported so far), by function path."""
    return dict(_DECLARED)


def job_path(func: Callable | str) -> str:
    return func if isinstance(func, str) else f"{func.__module__}.{func.__qualname__}"


def declared(func: Callable | str) -> tuple[Callable, JobKind]:
    """The job function and its declaration; a path is imported first (an old path finds the job
    its module re-exports). Raises :class:`UndeclaredJob` for anything not declared with ``@job``."""
    if isinstance(func, str):
        try:
            func = import_attribute(func)
        except (ImportError, AttributeError, ValueError) as exc:
            raise UndeclaredJob(f"no job function {func!r}") from exc
    kind = _DECLARED.get(job_path(func)) if callable(func) else None
    if kind is None:
        raise UndeclaredJob(f"{job_path(func)} is not a declared job: decorate it with @job")
    return func, kind


def kind_of(func: Callable | str) -> JobKind:
    """How a job is queued and run (see :func:`declared`)."""
    return declared(func)[1]


def get_queue(name: str = DEFAULT, connection=None) -> Queue:
    """RQ's queue object for a priority: its registries (started, failed, scheduled …)."""
    _check_queue(name)
    return Queue(
        name,
        connection=connection or redis_connections.client(),
        default_timeout=current_app.config["RQ_DEFAULT_JOB_TIMEOUT"],
    )


def _check_plain(value, where: str) -> None:
    if isinstance(value, _PLAIN_TYPES):
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check_plain(item, where)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(key, where)
            _check_plain(item, where)
        return
    raise TypeError(
        f"job {where} must be ids or plain values, not {type(value).__name__}; pass the object's id"
    )


def _acting_user_id() -> str | None:
    """The signed-in person of this request, without loading them: a job queued once the
    request's transaction has committed (mail written to the outbox) cannot query."""
    if not has_request_context():
        return None
    from flask import g, session

    user = g.get("_login_user")  # Flask-Login's, once loaded
    if user is not None:
        return str(user.id) if getattr(user, "is_authenticated", False) else None
    identity = session.get("_user_id")  # "<user id>:<session epoch>"
    return identity.partition(":")[0] or None if identity else None


def enqueue(
    func: Callable | str,
    *args,
    queue: str | None = None,
    job_id: str | None = None,
    timeout: int | None = None,
    retry: Retry | None = None,
    description: str | None = None,
    acting_user_id: uuid.UUID | str | None = None,
    **kwargs,
) -> Job:
    """Put ``func(*args, **kwargs)`` on its queue; records who asked in ``job.meta``.

    ``func`` is a function declared with :func:`job` (or its path); anything else raises
    :class:`UndeclaredJob`. Queue, timeout and retries come from its declaration unless given.
    The current tenant, if any, goes with the job: the worker runs it as that tenant and
    as no tenant at all otherwise, whatever ran before it in the same process. The acting
    user is ``acting_user_id`` or, in a request, the logged-in user.

    With a ``job_id`` the call is idempotent: when a job with that id exists, it is
    returned and nothing is queued.

    ``description`` replaces RQ's default (the call with its arguments), which
    the worker logs: give one when the arguments must stay out of the logs.
    """
    _check_plain(list(args), "arguments")
    _check_plain(kwargs, "arguments")
    func, kind = declared(func)
    priority = queue or kind.queue
    rq_queue = get_queue(priority)
    connection = rq_queue.connection

    meta = {}
    tenant_id = current_tenant_id()
    if tenant_id is not None:
        meta["tenant_id"] = str(tenant_id)  # the job runs as this tenant (workers/worker.py)
    user_id = acting_user_id if acting_user_id is not None else _acting_user_id()
    if user_id is not None:
        meta["user_id"] = str(user_id)
    if has_request_context() and g.get("request_id"):
        meta["request_id"] = g.request_id

    job = rq_queue.create_job(
        func,
        args=args,
        kwargs=kwargs,
        job_id=job_id,
        timeout=timeout or kind.timeout,
        retry=retry or kind.retry,
        description=description,
        meta=meta,
        result_ttl=RESULT_TTL_SECONDS,
        failure_ttl=FAILURE_TTL_SECONDS,
    )
    job.enqueued_at = now()
    if lanes.push(connection, job, lanes.lane_for(priority, tenant_id), priority):
        return job
    return Job.fetch(job.id, connection=connection)


# --- what operators look at --------------------------------------------------------------


def queued_jobs(priority: str, connection: Redis) -> list[Job]:
    """The jobs waiting in every lane of a priority (RQ's own list first, then by tenant)."""
    jobs = []
    for lane in lanes.lanes(connection, priority):
        ids = [value.decode() for value in connection.lrange(lane, 0, -1)]
        jobs += [job for job in Job.fetch_many(ids, connection=connection) if job is not None]
    return jobs


def queue_depths(connection: Redis) -> dict[str, dict]:
    """Per priority: waiting jobs summed over all lanes, lanes with work, and the oldest job's age."""
    depths = {}
    current = now()
    for priority in QUEUES:
        lane_keys = lanes.lanes(connection, priority)
        with connection.pipeline(transaction=False) as pipe:
            for lane in lane_keys:
                pipe.llen(lane)
                pipe.lindex(lane, 0)
            answers = pipe.execute()
        counts, heads = answers[0::2], [head.decode() for head in answers[1::2] if head]
        oldest = None
        for job in Job.fetch_many(heads, connection=connection):
            if job is not None and job.enqueued_at and (oldest is None or job.enqueued_at < oldest):
                oldest = job.enqueued_at
        depths[priority] = {
            "jobs": sum(counts),
            "lanes": sum(1 for count in counts if count),
            "oldest_age_seconds": round((current - oldest).total_seconds(), 1) if oldest else None,
        }
    return depths


def failed_jobs(connection: Redis, limit: int = 100) -> list[dict]:
    """Failed jobs, newest first, with the error each one ended with."""
    entries = []
    for priority in QUEUES:
        registry = Queue(priority, connection=connection).failed_job_registry
        for job in Job.fetch_many(registry.get_job_ids(), connection=connection):
            if job is None:
                continue
            result = job.latest_result()
            entries.append(
                {
                    "id": job.id,
                    "queue": priority,
                    "func": job.func_name,
                    "description": job.description,
                    "tenant_id": job.meta.get("tenant_id"),
                    "user_id": job.meta.get("user_id"),
                    "enqueued_at": job.enqueued_at,
                    "ended_at": job.ended_at,
                    "error": result.exc_string if result is not None else None,
                    "status": job.get_status(refresh=False),
                }
            )
    entries.sort(key=lambda entry: entry["ended_at"] or entry["enqueued_at"] or now(), reverse=True)
    return entries[:limit]
