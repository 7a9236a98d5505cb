"""Queue names and the one way to enqueue a job.

Jobs take ids and plain values, never ORM objects: an object pickled into
Redis is stale by the time a worker reads it, and may carry another tenant's
state. ``enqueue`` refuses anything else.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

from flask import current_app, g, has_request_context
from rq import Queue, Retry
from rq.job import Job

from app.extensions import redis_connections
from app.tenancy import current_tenant_id

HIGH = "high"
DEFAULT = "default"
LOW = "low"
#: Listening order of every worker: a worker always takes high before default before low.
QUEUES = (HIGH, DEFAULT, LOW)

_PLAIN_TYPES = (str, int, float, bool, type(None), uuid.UUID, datetime, date, Decimal)


def get_queue(name: str = DEFAULT, connection=None) -> Queue:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}; queues are {', '.join(QUEUES)}")
    return Queue(
        name,
        connection=connection or redis_connections.client(),
        default_timeout=current_app.config["RQ_DEFAULT_JOB_TIMEOUT"],
    )


def _check_plain(value, where: str) -> None:
    if isinstance(value, _PLAIN_TYPES):
        return
    if isinstance(value, (list, tuple)):
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


def enqueue(
    func: Callable | str,
    *args,
    queue: str = DEFAULT,
    job_id: str | None = None,
    timeout: int | None = None,
    retry: Retry | None = None,
    description: str | None = None,
    **kwargs,
) -> Job:
    """Put ``func(*args, **kwargs)`` on a queue; records who asked in ``job.meta``.

    The current tenant, if any, goes with the job: the worker runs it as that tenant and
    as no tenant at all otherwise, whatever ran before it in the same process.

    ``description`` replaces RQ's default (the call with its arguments), which
    the worker logs: give one when the arguments must stay out of the logs.
    """
    _check_plain(list(args), "arguments")
    _check_plain(kwargs, "arguments")
    meta = {}
    tenant_id = current_tenant_id()
    if tenant_id is not None:
        meta["tenant_id"] = str(tenant_id)  # the job runs as this tenant (workers/worker.py)
    if has_request_context() and g.get("request_id"):
        meta["request_id"] = g.request_id
    return get_queue(queue).enqueue(
        func,
        args=args,
        kwargs=kwargs,
        job_id=job_id,
        job_timeout=timeout,
        retry=retry,
        description=description,
        meta=meta,
    )
