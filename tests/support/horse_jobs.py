"""Jobs for the work-horse tests: what one job may leave behind in its process, and jobs that never end.

Each job records a JSON line on a Redis list: its label, the pid of the process it ran in and
what it found.
"""

import json
import os
import signal
import threading
import time
import uuid

from flask import g

from app.core import tenancy
from app.core.queue.queues import job
from app.extensions import db, redis_connections
from app.models import Task


def _record(key: str, label: str, **seen) -> None:
    redis_connections.client().rpush(key, json.dumps({"label": label, "pid": os.getpid(), **seen}))


@job()
def leave_state_behind(key: str, label: str) -> None:
    """Set, and never reset, everything a job could hand to the next one in the same process."""
    tenancy._current_tenant.set(uuid.uuid4())  # no tenant_context: nothing resets it
    tenancy._unscoped_reason.set("left behind by the job before")
    g.left_behind = label
    db.session.info["left_behind"] = label
    db.session.add(Task(kind="left-behind", description=label))  # pending, never committed
    _record(key, label)


@job()
def report_state(key: str, label: str) -> None:
    """Record the tenant, ``unscoped`` reason, ``g`` and session state this job starts with."""
    _record(
        key,
        label,
        tenant=str(tenancy.current_tenant_id() or "none"),
        unscoped=tenancy.unscoped_reason(),
        g=g.get("left_behind"),
        session_info=db.session.info.get("left_behind"),
        session_new=len(db.session.new),
    )


@job()
def fail(key: str, label: str) -> None:
    """Record the pid, then fail."""
    _record(key, label)
    raise RuntimeError("this job fails")


@job()
def start_a_thread(key: str, label: str) -> None:
    """Leave a thread running after the job returns."""
    threading.Thread(target=time.sleep, args=(300,), daemon=True).start()
    _record(key, label)


@job()
def change_the_environment(key: str, label: str) -> None:
    """Leave a changed environment variable behind."""
    os.environ["WORKLANE_LEFT_BEHIND"] = label
    _record(key, label)


@job()
def sleep_for(key: str, label: str, seconds: float) -> None:
    """Record the pid, then sleep (an alarm interrupts it)."""
    _record(key, label)
    time.sleep(seconds)


@job()
def hang(key: str, label: str, seconds: float) -> None:
    """Record the pid, then block as a call that never returns to Python would: no alarm reaches it."""
    _record(key, label)
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])
    time.sleep(seconds)
