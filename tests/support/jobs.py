"""Jobs the tests enqueue into real workers (importable by a worker started from the project root)."""

import os
import time

from rq import get_current_job

from app.core.queue.queues import job
from app.core.tenancy import current_tenant_id, unscoped
from app.extensions import redis_connections


@job()
def record_tenant(key: str, label: str = "") -> str:
    """Append ``<label>=<tenant this job runs as>`` ("none" when none) and the worker's pid."""
    seen = str(current_tenant_id() or "none")
    redis_connections.client().rpush(key, f"{label}={seen}={os.getppid()}")
    return seen


@job()
def record_start(key: str, label: str) -> None:
    """Append ``label`` to a Redis list as the job starts (the order jobs were started in)."""
    redis_connections.client().rpush(key, label)


@job()
def count_run(key: str) -> int:
    """Count one run of this job in a Redis counter."""
    return redis_connections.client().incr(key)


@job()
def block_until_released(name: str, seconds: float = 120) -> str:
    """Record ``<job id> <pid> <time>`` under ``started:<name>``; wait for a token on ``release:<name>``."""
    redis = redis_connections.client()
    redis.rpush(f"started:{name}", f"{get_current_job().id} {os.getpid()} {time.time()}")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:  # short waits: the app's Redis client has a socket timeout
        if redis.blpop([f"release:{name}"], timeout=1) is not None:
            return name
    raise TimeoutError(f"{name} was never released")


@job()
def count_to(task_id: str, total: int, fail_at: int | None = None) -> dict:
    """A task that counts to ``total`` reporting progress; fails with a readable error at ``fail_at``."""
    from app.core.queue.tracking import TaskError, TaskProgress, tracked
    from app.extensions import db

    with tracked(task_id) as task:
        progress = TaskProgress(task, total, noun="steps")
        for step in range(1, total + 1):
            if step == fail_at:
                raise TaskError(f"Step {step} could not be done.")
            progress(step)
        result = {"counted": total}
        task.mark_finished(result, message=f"Counted to {total}.")
        db.session.commit()
        return result


@job()
def fail_until_allowed(key: str) -> str:
    """Fail with a readable error until the Redis key ``key`` exists; then record the tenant under it."""
    redis = redis_connections.client()
    if not redis.exists(key):
        raise RuntimeError(f"not allowed yet: {key}")
    seen = str(current_tenant_id() or "none")
    redis.rpush(f"{key}:ran", seen)
    return seen


@job()
def write_in_batches(name: str, hold_seconds: float, pause_seconds: float) -> int:
    """Write as an import does, batch after batch: each transaction holds the write lock ``hold_seconds``.

    Runs until the Redis key ``<name>:stop`` exists; sets ``<name>:batches`` to the batches committed.
    """
    from app.extensions import db
    from app.models import Task

    redis = redis_connections.client()
    batches = 0
    while not redis.exists(f"{name}:stop"):
        with unscoped("test: the system's own tasks"):
            db.session.add(Task(kind="batch", description=f"{name} batch {batches}"))
            db.session.flush()  # on SQLite the transaction began with BEGIN IMMEDIATE: the lock is held
        redis.set(f"{name}:writing", "1")
        time.sleep(hold_seconds)
        db.session.commit()
        batches += 1
        redis.set(f"{name}:batches", batches)
        time.sleep(pause_seconds)
    return batches
