"""Flask CLI commands for the Procfile processes: ``flask --app wsgi web``, ``… worker``, ``… scheduler``.

``wsgi.py`` adds them to the app it builds; the app itself never imports ``workers``.
"""

from __future__ import annotations

import click
from flask import Flask, current_app

from app.core.queue.queues import QUEUES


def register_process_commands(app: Flask) -> None:
    app.cli.add_command(web_command)
    app.cli.add_command(worker_command)
    app.cli.add_command(scheduler_command)


@click.command("web")
@click.option("--host", envvar="HOST", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", envvar="PORT", type=int, default=5000, show_default=True)
@click.option("--threads", envvar="WEB_THREADS", type=click.IntRange(1), default=8, show_default=True)
@click.option(
    "--shutdown-seconds",
    envvar="WEB_SHUTDOWN_SECONDS",
    type=click.FloatRange(0),
    default=20,
    show_default=True,
    help="On SIGTERM, how long requests in flight may take to finish before the process exits.",
)
@click.option(
    "--connection-limit",
    envvar="WEB_CONNECTION_LIMIT",
    type=click.IntRange(1),
    default=100,
    show_default=True,
    help="Open connections beyond which no new one is accepted.",
)
@click.option(
    "--channel-timeout",
    envvar="WEB_CHANNEL_TIMEOUT",
    type=click.IntRange(1),
    default=120,
    show_default=True,
    help="Seconds after which an idle connection is closed.",
)
def web_command(host, port, threads, shutdown_seconds, connection_limit, channel_timeout):
    """Serve the app with waitress; on SIGTERM stop accepting, finish the requests in flight, exit."""
    from workers.web import run_web

    cut = run_web(
        current_app._get_current_object(),
        host=host,
        port=port,
        threads=threads,
        shutdown_seconds=shutdown_seconds,
        connection_limit=connection_limit,
        channel_timeout=channel_timeout,
    )
    if cut:
        raise SystemExit(1)


@click.command("worker")
@click.option(
    "--queues",
    default=None,
    help="Comma-separated queues in priority order (default: high,default,low).",
)
@click.option("--burst", is_flag=True, help="Exit once the queues are empty.")
@click.option("--name", default=None, help="Worker name (default: generated).")
@click.option(
    "--shutdown-seconds",
    envvar="WORKER_SHUTDOWN_SECONDS",
    type=click.FloatRange(0),
    default=120,
    show_default=True,
    help="On SIGTERM, how long the running job may take to finish before it is put back on its queue.",
)
def worker_command(queues, burst, name, shutdown_seconds):
    """Run an RQ worker; every job runs in an app context."""
    from workers.worker import run_worker

    names = tuple(q.strip() for q in queues.split(",") if q.strip()) if queues else QUEUES
    unknown = [q for q in names if q not in QUEUES]
    if unknown:
        raise click.BadParameter(f"unknown queue(s) {', '.join(unknown)}", param_hint="--queues")
    from app.extensions import redis_connections

    app = current_app._get_current_object()
    redis_connections.for_jobs(app)  # the web's short timeouts are for people waiting on a page
    run_worker(
        app,
        queues=names,
        burst=burst,
        name=name,
        shutdown_seconds=shutdown_seconds,
    )


@click.command("scheduler")
@click.option("--once", is_flag=True, help="Run one tick and exit.")
def scheduler_command(once):
    """Enqueue periodic jobs, once per period across all schedulers."""
    from workers.scheduler import run_scheduler

    run_scheduler(current_app._get_current_object(), once=once)
