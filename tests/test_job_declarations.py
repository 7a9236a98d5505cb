"""Jobs declared at their functions: every job's settings, one list of job modules, undeclared refused."""

from __future__ import annotations

import ast

import pytest

from app.config import PROJECT_ROOT
from app.core.queue.queues import UndeclaredJob, declared_jobs, enqueue, job_path, kind_of
from app.core.queue.registry import JOB_MODULES, load_job_modules, periodic_jobs

#: Every job: (queue, timeout, (retries, waits) or None, transient errors, (period name, seconds) or None).
#: Period names are the scheduler's Redis claim keys: never rename one.
EXPECTED_JOBS = {
    "app.apikeys.jobs.purge_idempotent_requests": (
        "low",
        300,
        None,
        "any_error",
        ("purge-idempotency-keys", 3600),
    ),
    "app.audit.jobs.apply_audit_retention": ("low", 1800, None, "any_error", ("audit-retention", 86400)),
    "app.audit.jobs.sign_audit_checkpoints": ("low", 600, None, "any_error", ("audit-checkpoint", 3600)),
    "app.core.mail_delivery.deliver_outbox_mail": ("high", 120, None, "any_error", None),
    "app.core.mail_delivery.purge_sent_mail": ("low", 300, None, "any_error", ("purge-sent-mail", 3600)),
    "app.core.mail_delivery.sweep_outbox": ("high", 300, None, "any_error", ("sweep-outbox", 60)),
    "app.exports.jobs.delete_expired_exports": (
        "low",
        900,
        None,
        "any_error",
        ("delete-expired-exports", 3600),
    ),
    "app.exports.jobs.enqueue_nightly_exports": (
        "low",
        900,
        (3, [60, 180, 540]),
        "any_error",
        ("nightly-exports", 86400),
    ),
    "app.exports.jobs.export_organization": ("low", 10800, (2, [300, 900]), "any_error", None),
    "app.imports.jobs.import_issues": ("default", 1800, (3, [10, 30, 90]), "not_a_task_error", None),
    "app.imports.jobs.purge_stale_uploads": ("low", 600, None, "any_error", ("purge-stale-imports", 86400)),
    "app.tasks.jobs.purge_finished_jobs": (
        "low",
        600,
        (3, [60, 180, 540]),
        "any_error",
        ("purge-finished-jobs", 3600),
    ),
    "app.tasks.jobs.run_system_check": ("high", 60, None, "any_error", None),
    "app.notifications.jobs.send_daily_digests": (
        "low",
        1800,
        (3, [60, 180, 540]),
        "any_error",
        ("daily-digest", 86400),
    ),
    "app.auth.deletion.delete_due_accounts": ("low", 1800, None, "any_error", ("delete-due-accounts", 3600)),
    "app.orgs.deletion.delete_due_organizations": (
        "low",
        3600,
        None,
        "any_error",
        ("delete-due-organizations", 3600),
    ),
    "app.orgs.jobs.delete_expired_invitations": (
        "low",
        300,
        None,
        "any_error",
        ("delete-expired-invitations", 86400),
    ),
    "app.reports.jobs.compute_reports": ("default", 300, None, "any_error", None),
    "app.tasks.jobs.delete_old_tasks": ("low", 300, None, "any_error", ("delete-old-tasks", 86400)),
    "app.webhooks.jobs.deliver_webhook": ("default", 60, None, "any_error", None),
    "app.webhooks.jobs.purge_webhook_log": ("low", 600, None, "any_error", ("purge-webhook-log", 86400)),
    "app.webhooks.jobs.queue_due_webhook_deliveries": (
        "high",
        60,
        None,
        "any_error",
        ("webhook-deliveries", 5),
    ),
}

#: Job paths before the jobs moved beside their features: jobs queued under them still run.
OLD_PATHS = {
    "workers.mail.deliver_outbox_mail": "app.core.mail_delivery.deliver_outbox_mail",
    "workers.mail.sweep_outbox": "app.core.mail_delivery.sweep_outbox",
    "workers.system.run_system_check": "app.tasks.jobs.run_system_check",
    "workers.system.purge_finished_jobs": "app.tasks.jobs.purge_finished_jobs",
    "workers.notifications.send_daily_digests": "app.notifications.jobs.send_daily_digests",
    "workers.exports.export_organization": "app.exports.jobs.export_organization",
    "workers.exports.enqueue_nightly_exports": "app.exports.jobs.enqueue_nightly_exports",
    "workers.housekeeping.delete_expired_exports": "app.exports.jobs.delete_expired_exports",
    "workers.housekeeping.delete_expired_invitations": "app.orgs.jobs.delete_expired_invitations",
    "workers.housekeeping.delete_old_tasks": "app.tasks.jobs.delete_old_tasks",
    "workers.housekeeping.purge_sent_mail": "app.core.mail_delivery.purge_sent_mail",
    "workers.imports.import_issues": "app.imports.jobs.import_issues",
    "workers.imports.purge_stale_uploads": "app.imports.jobs.purge_stale_uploads",
    "workers.reports.compute_reports": "app.reports.jobs.compute_reports",
}


def _settings(kind) -> tuple:
    retry = (kind.retry.max, list(kind.retry.intervals)) if kind.retry is not None else None
    period = (kind.period.name, kind.period.every_seconds) if kind.period is not None else None
    return (kind.queue, kind.timeout, retry, kind.transient.__name__, period)


def _modules_with_jobs(folder: str) -> set[str]:
    """Modules under ``folder`` with a function decorated ``@job(…)``."""
    found = set()
    for path in (PROJECT_ROOT / folder).rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
                isinstance(decorator, ast.Call) and getattr(decorator.func, "id", None) == "job"
                for decorator in node.decorator_list
            ):
                found.add(".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts))
    return found


def _undeclared(task_id: str) -> None:
    """A plain function nobody declared a job."""


def test_every_job_and_its_settings():
    """Each job's queue, timeout, retries, transient errors and period are exactly the table's."""
    load_job_modules()
    declared = {
        path: _settings(kind) for path, kind in declared_jobs().items() if not path.startswith("tests.")
    }
    assert declared == EXPECTED_JOBS


def test_periodic_jobs_come_from_the_declarations():
    """The scheduler's periodic jobs are the declared periods, with each job's queue and timeout."""
    expected = {
        settings[4][0]: (path, settings[4][1], settings[0], settings[1])
        for path, settings in EXPECTED_JOBS.items()
        if settings[4] is not None
    }
    assert {job.name: (job.func, job.every_seconds, job.queue, job.timeout) for job in periodic_jobs()} == (
        expected
    )


def test_every_module_with_jobs_is_listed():
    """JOB_MODULES names exactly the modules that declare jobs, so worker and scheduler import them all."""
    assert _modules_with_jobs("app") == set(JOB_MODULES)
    assert _modules_with_jobs("workers") == set()


def test_enqueue_refuses_an_undeclared_function():
    """A function without @job, or a misspelled path, is refused before anything is queued."""
    with pytest.raises(UndeclaredJob):
        enqueue(_undeclared, "42")
    with pytest.raises(UndeclaredJob):
        enqueue(job_path(_undeclared), "42")
    with pytest.raises(UndeclaredJob):
        enqueue("app.imports.jobs.import_issue", "42")
    with pytest.raises(UndeclaredJob):
        enqueue("app.imports.nowhere.import_issues", "42")


def test_old_job_paths_find_the_moved_jobs():
    """A job queued under its path before the move runs the same function with the same settings."""
    for old, new in OLD_PATHS.items():
        assert kind_of(old) == kind_of(new), old
