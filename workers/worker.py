"""The worker process: an RQ worker whose jobs each run in a fresh app context."""

from __future__ import annotations

import logging

from flask import Flask
from redis import Redis
from rq import Worker

from app.extensions import db
from app.tenancy import tenant_context
from workers.queues import QUEUES

log = logging.getLogger(__name__)

#: Jobs whose arguments never reach the logs (an email's body holds sign-in and reset links).
PRIVATE_ARGUMENT_JOBS = frozenset({"workers.mail.deliver_email"})


class HidePrivateArguments(logging.Filter):
    """RQ logs a failing job's arguments; for the jobs above they are replaced by a placeholder."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "func", None) in PRIVATE_ARGUMENT_JOBS:
            record.arguments = record.kwargs = "(hidden)"
        return True


_hide_private_arguments = HidePrivateArguments()


class AppWorker(Worker):
    """Runs every job inside an app context of the app it was built for.

    The job runs in a forked work horse; the pooled database connections it
    inherited from the parent are dropped first (a socket must never be shared
    by two processes).
    """

    app: Flask

    def __init__(self, *args, app: Flask, **kwargs):
        super().__init__(*args, **kwargs)
        self.app = app

    def perform_job(self, job, queue):
        # The tenant comes from the job alone (None for system jobs) and is reset afterwards,
        # so a job never inherits the tenant of the job before it.
        with self.app.app_context(), tenant_context(job.meta.get("tenant_id")):
            if getattr(self, "_is_horse", False):
                for engine in db.engines.values():
                    engine.dispose(close=False)
            try:
                return super().perform_job(job, queue)
            finally:
                db.session.remove()


def worker_connection(app: Flask) -> Redis:
    """A Redis client for the worker loop: no socket timeout, since dequeue blocks."""
    return Redis.from_url(app.config["REDIS_URL"], socket_connect_timeout=5, health_check_interval=30)


def run_worker(app: Flask, queues=QUEUES, burst: bool = False, name: str | None = None) -> bool:
    """Work the given queues in priority order until stopped (or empty, with ``burst``)."""
    rq_log = logging.getLogger("rq.worker")
    if _hide_private_arguments not in rq_log.filters:
        rq_log.addFilter(_hide_private_arguments)
    connection = worker_connection(app)
    worker = AppWorker(
        list(queues),
        connection=connection,
        name=name,
        app=app,
        default_result_ttl=3600,
    )
    log.info("worker starting", extra={"queues": list(queues), "burst": burst})
    return worker.work(burst=burst, with_scheduler=True, logging_level=app.config["LOG_LEVEL"])
