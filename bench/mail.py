"""Mail benchmark: duplicates and losses when workers are SIGKILLed again and again mid-delivery.

    .venv/bin/python -m bench.mail                      # 2,000 mails, 2 workers, a kill every ~2 s
    .venv/bin/python -m bench.mail --mails 500 --kill-every 1 --min-life 3

Not part of the tests. It starts its own PostgreSQL and Redis (bench/services.py), an SMTP
server in this process that records every Message-ID it accepts, and the Procfile's
``flask --app wsgi worker`` processes. The mails are written to the outbox the way the app
writes them (``app.core.mail.send_email``, committed in batches of 100, each commit queuing the
delivery jobs). While they are delivered, one worker at a time is SIGKILLed (its work horse
dies with it) at random intervals around ``--kill-every``, once it has run ``--min-life``
seconds (time to start and take jobs), and replaced; the sweep is queued
every 2 s, as the scheduler would every minute, with a 2 s claim lease instead of 300 s.

Reported: mails written, accepted by the SMTP server, distinct Message-IDs, duplicates
(accepted - distinct), lost (written - distinct), rows given up, kills, seconds.
Writes ``bench/results/mail-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from email.parser import BytesHeaderParser

from bench.services import ROOT, VENV_BIN, Services, free_port, run_benchmark, say, stop_processes


class CountingHandler:
    """Accepts every message and records its Message-ID."""

    def __init__(self):
        self.lock = threading.Lock()
        self.message_ids: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        headers = BytesHeaderParser().parsebytes(envelope.original_content)
        with self.lock:
            self.message_ids.append(headers["Message-ID"])
        return "250 OK"


def _worker(env: dict[str, str], log_dir, n: int) -> subprocess.Popen:
    with open(log_dir / f"mail-worker-{n}.log", "ab") as log:
        return subprocess.Popen(
            [str(VENV_BIN / "flask"), "--app", "wsgi", "worker"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=log,
        )


def _write_mails(app, count: int) -> None:
    from app.core.mail import send_email
    from app.extensions import db

    with app.test_request_context("/"):
        for start in range(0, count, 100):
            for n in range(start, min(start + 100, count)):
                send_email(f"person-{n}@example.com", "password_changed", name=f"Person {n}")
            db.session.commit()


def _status_counts(app) -> dict[str, int]:
    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import OutboxMail

    with app.app_context():
        rows = db.session.execute(select(OutboxMail.status, func.count()).group_by(OutboxMail.status)).all()
        db.session.remove()
    return dict(rows)


def run(
    app, env, mails: int, workers: int, kill_every: float, min_life: float, log_dir, timeout: float
) -> dict:
    from aiosmtpd.controller import Controller

    from app.core.queue.queues import enqueue

    handler = CountingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    env = {
        **env,
        "SMTP_URL": f"smtp://127.0.0.1:{port}",
        "OUTBOX_SWEEP_AFTER_SECONDS": "2",
        "OUTBOX_LEASE_SECONDS": "2",
        "LOG_LEVEL": "WARNING",
    }
    rng = random.Random(7)
    started = time.monotonic()
    processes = [_worker(env, log_dir, n) for n in range(workers)]
    born = [time.monotonic()] * workers
    spawned, kills = workers, 0
    say(f"writing {mails} mails while {workers} workers deliver them")
    writer = threading.Thread(target=_write_mails, args=(app, mails))
    writer.start()
    next_kill = time.monotonic() + rng.uniform(0.5, 1.5) * kill_every
    next_sweep = time.monotonic() + 2
    try:
        while time.monotonic() - started < timeout:
            now = time.monotonic()
            if now >= next_sweep:
                with app.app_context():
                    enqueue("app.core.mail_delivery.sweep_outbox", job_id=f"bench-sweep-{int(now)}")
                next_sweep = now + 2
                counts = _status_counts(app)
                if (
                    not writer.is_alive()
                    and sum(counts.values()) == mails
                    and set(counts) <= {"sent", "failed"}
                ):
                    break
            grown = [n for n, at in enumerate(born) if now - at >= min_life]
            if now >= next_kill and grown:
                # Only a worker that has had time to start and take jobs: a kill mid-delivery.
                victim = rng.choice(grown)
                processes[victim].send_signal(signal.SIGKILL)
                processes[victim].wait()
                kills += 1
                processes[victim] = _worker(env, log_dir, spawned)
                born[victim] = time.monotonic()
                spawned += 1
                next_kill = now + rng.uniform(0.5, 1.5) * kill_every
            time.sleep(0.05)
        else:
            say("timed out before every mail was sent")
    finally:
        stop_processes(processes)
        writer.join()
        controller.stop()
    counts = _status_counts(app)
    accepted = len(handler.message_ids)
    distinct = len(set(handler.message_ids))
    return {
        "mails": mails,
        "workers": workers,
        "kill_every_seconds": kill_every,
        "worker_lives_at_least_seconds": min_life,
        "kills": kills,
        "seconds": round(time.monotonic() - started, 1),
        "accepted_by_smtp": accepted,
        "distinct_message_ids": distinct,
        "duplicates": accepted - distinct,
        "lost": mails - distinct,
        "outbox_status": counts,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mail", description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=2000, help="mails to send (default 2,000)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument(
        "--kill-every", type=float, default=2.0, help="mean seconds between kills (default 2)"
    )
    parser.add_argument(
        "--min-life",
        type=float,
        default=4.0,
        help="a worker runs this long before it may be killed (default 4)",
    )
    parser.add_argument("--timeout", type=float, default=900, help="give up after this many seconds")
    args = parser.parse_args(argv)

    def measure(services: Services, results: dict) -> None:
        app, env = services.migrated_app("mail")
        results["run"] = run(
            app, env, args.mails, args.workers, args.kill_every, args.min_life, services.work, args.timeout
        )
        say(json.dumps(results["run"]))

    return run_benchmark("mail", {"settings": vars(args)}, measure)


if __name__ == "__main__":
    sys.exit(main())
