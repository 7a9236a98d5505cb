"""Flask CLI commands for the Procfile processes: ``flask --app wsgi worker``, ``… scheduler``.

``wsgi.py`` adds them to the app it builds; the app itself never imports ``workers``.
"""

from __future__ import annotations

import click
from flask import Flask, current_app

from app.core.queue.queues import QUEUES


def register_process_commands(app: Flask) -> None:
    app.cli.add_command(worker_command)
    app.cli.add_command(scheduler_command)


@click.command("worker")
@click.option(
    "--queues",
    default=None,
    help="Comma-separated queues in priority order (default: high,default,low).",
)
@click.option("--burst", is_flag=True, help="Exit once the queues are empty.")
@click.option("--name", default=None, help="Worker name (default: generated).")
def worker_command(queues, burst, name):
    """Run an RQ worker; every job runs in an app context."""
    from workers.worker import run_worker

    names = tuple(q.strip() for q in queues.split(",") if q.strip()) if queues else QUEUES
    unknown = [q for q in names if q not in QUEUES]
    if unknown:
        raise click.BadParameter(f"unknown queue(s) {', '.join(unknown)}", param_hint="--queues")
    run_worker(current_app._get_current_object(), queues=names, burst=burst, name=name)


@click.command("scheduler")
@click.option("--once", is_flag=True, help="Run one tick and exit.")
def scheduler_command(once):
    """Enqueue periodic jobs, once per period across all schedulers."""
    from workers.scheduler import run_scheduler

    run_scheduler(current_app._get_current_object(), once=once)
