"""Where the jobs are: the one list of modules that declare jobs, and the periodic jobs among them.

A job is declared at its function (``@job`` in ``app.core.queue.queues``), in the module of
the feature it serves. The worker and the scheduler import every module listed in
``JOB_MODULES`` before they start, so the scheduler sees every periodic job; a test checks
that each module with a ``@job`` is listed.

The periodic jobs and what each deletes: ``docs/architecture.md``, *Housekeeping*.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from app.core.queue.queues import LOW, declared_jobs

#: Every module that declares jobs.
JOB_MODULES = (
    "app.apikeys.jobs",
    "app.auth.deletion",
    "app.audit.jobs",
    "app.core.mail_delivery",
    "app.exports.jobs",
    "app.imports.jobs",
    "app.notifications.jobs",
    "app.orgs.deletion",
    "app.orgs.jobs",
    "app.reports.jobs",
    "app.tasks.jobs",
    "app.webhooks.jobs",
)

#: Written by the scheduler at each tick (its value: the time); read by the operator console.
HEARTBEAT_KEY = "worklane:scheduler:heartbeat"


def load_job_modules() -> None:
    """Import every module of ``JOB_MODULES``, so each of their jobs is declared."""
    for module in JOB_MODULES:
        importlib.import_module(module)


@dataclass(frozen=True)
class PeriodicJob:
    """A job the scheduler enqueues once per slot of ``every_seconds`` (slots start at the epoch)."""

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


def periodic_jobs() -> tuple[PeriodicJob, ...]:
    """Every job declared with a period, by name; a name declared twice raises ``ValueError``."""
    load_job_modules()
    jobs: dict[str, PeriodicJob] = {}
    for path, kind in sorted(declared_jobs().items()):
        if kind.period is None:
            continue
        if kind.period.name in jobs:
            raise ValueError(f"two periodic jobs named {kind.period.name!r}")
        jobs[kind.period.name] = PeriodicJob(
            kind.period.name, path, kind.period.every_seconds, queue=kind.queue, timeout=kind.timeout
        )
    return tuple(jobs[name] for name in sorted(jobs))
