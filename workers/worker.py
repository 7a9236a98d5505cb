"""The worker process: an RQ worker that takes jobs fairly and runs each in a fresh app context.

What it changes in RQ's worker, and why:

- **Dequeue** (``app.core.queue.lanes``): priority first, then round-robin over the tenants'
  lanes; the job is claimed in the started registry in the same atomic step, so a job is
  never only in the worker's memory (RQ's own multi-queue dequeue pops it with nothing
  to recover it from if the worker dies before starting it).
- **Heartbeats**: every ``JOB_HEARTBEAT_SECONDS`` while a job runs; the job counts as
  abandoned ``JOB_LOST_AFTER_SECONDS`` after the last one (RQ waits a fixed extra minute).
- **Maintenance** (``workers.maintenance``) every ``JOB_MAINTENANCE_SECONDS`` instead of
  every ten minutes; it also puts due retries back on their queue, so the worker does not
  run RQ's separate scheduler process.
- **Retries** only for the errors the job's declaration calls transient (``@job(transient=…)``).
- **One work horse runs many jobs** (``workers.horse``): forked once and handed job after
  job, instead of a fork per job; each job runs in a fresh copy of the horse's initial
  context (no context variable a job sets reaches the next), its own app context (its own
  ``g`` and database session, removed afterwards), and the horse is replaced after a job
  that failed or changed its process (threads, signals, environment, the app's config).
  A job running ``JOB_KILL_GRACE_SECONDS`` past its timeout (stuck where RQ's alarm cannot
  reach it) has its horse killed by the worker.
- The work horse dies with its worker (``PR_SET_PDEATHSIG`` on Linux): a job whose worker
  was killed is recovered and run again, never left running unsupervised as well.
- The tenant comes from the job alone (None for system jobs) and is reset afterwards.
- **Stopping** (SIGTERM, what a supervisor sends): RQ's warm shutdown lets the running job
  finish; one still running ``shutdown_seconds`` later (``WORKER_SHUTDOWN_SECONDS``) is
  stopped and put back at the front of its lane, without counting as a failure or a retry,
  before the supervisor's own stop timeout would kill the worker with it.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import time
from contextlib import contextmanager
from uuid import uuid4

import redis.exceptions
from flask import Flask
from redis import Redis
from rq.exceptions import NoSuchJobError
from rq.executions import Execution, ExecutionRegistry
from rq.job import JobStatus
from rq.utils import now
from rq.worker.base import WorkerStatus

from app.core.queue import lanes
from app.core.queue.queues import DEFAULT_KIND, QUEUES, RESULT_TTL_SECONDS, UndeclaredJob, kind_of
from app.core.queue.registry import load_job_modules
from app.core.tenancy import tenant_context
from app.extensions import db
from workers.horse import ReusedHorseWorker
from workers.maintenance import run_maintenance

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


def stop_retrying_final_errors(job, exc_type, exc_value, traceback) -> bool:
    """RQ exception handler: an error the job's declaration does not call transient is not retried."""
    if job.retries_left and not _kind(job.func_name).transient(exc_value):
        log.info("final error: not retried", extra={"job_id": job.id, "error": exc_type.__name__})
        job.retries_left = 0
    return True


def _kind(func_name: str):
    try:
        return kind_of(func_name)
    except UndeclaredJob:  # queued straight through RQ, around ``enqueue``: any error is retried
        return DEFAULT_KIND


def _die_with_parent(parent_pid: int | None) -> None:
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:  # the worker died before prctl
        os._exit(1)


class AppWorker(ReusedHorseWorker):
    """Runs every job inside an app context of the app it was built for.

    Jobs run in a forked work horse that serves job after job (``workers.horse``); the
    pooled database connections it inherited from the worker are dropped when it starts
    (a socket must never be shared by two processes), and its own pool serves its jobs.
    """

    app: Flask
    #: A job the worker puts back (a retry without backoff) goes to the front of its lane.
    queue_class = lanes.LaneQueue

    def __init__(self, *args, app: Flask, shutdown_seconds: float | None = None, **kwargs):
        kwargs.setdefault("job_monitoring_interval", app.config["JOB_HEARTBEAT_SECONDS"])
        kwargs.setdefault("maintenance_interval", app.config["JOB_MAINTENANCE_SECONDS"])
        kwargs.setdefault("default_result_ttl", RESULT_TTL_SECONDS)
        super().__init__(*args, **kwargs)
        self.app = app
        self.lost_after = app.config["JOB_LOST_AFTER_SECONDS"]
        self.hung_job_grace_seconds = app.config["JOB_KILL_GRACE_SECONDS"]
        self._execution_id: str | None = None
        self.shutdown_seconds = shutdown_seconds
        self._put_back_at: float | None = None
        self._putting_back: str | None = None
        self.push_exc_handler(stop_retrying_final_errors)

    # --- taking a job ------------------------------------------------------------------

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        """Take the next job fairly (``queue.lanes``); wait for one unless ``timeout`` is None (burst)."""
        if self.get_state() != WorkerStatus.IDLE:  # the job before set it already
            self.set_state(WorkerStatus.IDLE)
        self.procline("Listening on " + ",".join(self.queue_names()))
        connection_wait = 1.0
        while True:
            if self._stop_requested:  # a stop the code it interrupted swallowed (see request_stop)
                return None
            try:
                self.heartbeat()
                if self.should_run_maintenance_tasks:
                    self.run_maintenance_tasks()
                execution_id = uuid4().hex
                claimed = lanes.dequeue(self.connection, self.queue_names(), execution_id, self.lost_after)
                if claimed is not None:
                    priority, job_id, _lane = claimed
                    try:
                        job = self.job_class.fetch(
                            job_id, connection=self.connection, serializer=self.serializer
                        )
                    except NoSuchJobError:
                        lanes.release_claim(self.connection, priority, job_id, execution_id)
                        continue
                    if job.get_status(refresh=False) == JobStatus.CANCELED:
                        lanes.release_claim(self.connection, priority, job_id, execution_id)
                        continue
                    job.redis_server_version = self.get_redis_server_version()
                    queue = self.queue_class(
                        priority,
                        connection=self.connection,
                        job_class=self.job_class,
                        serializer=self.serializer,
                        death_penalty_class=self.death_penalty_class,
                    )
                    self._execution_id = execution_id
                    self.log.info("Worker %s: %s: %s (%s)", self.name, priority, job.description, job.id)
                    return job, queue
                if timeout is None:  # burst: the queues are empty, done
                    return None
                # Wake on the next enqueue, or in time for the next maintenance pass.
                lanes.wait_for_work(self.connection, self.maintenance_interval)
            except redis.exceptions.ConnectionError as error:
                self.log.error(
                    "Worker %s: Redis unreachable (%s); retrying in %ds", self.name, error, connection_wait
                )
                time.sleep(connection_wait)
                connection_wait = min(connection_wait * 2, self.max_connection_wait_time)

    def execute_job(self, job, queue):
        claimed = lanes.confirm_claim(
            self.connection, queue.name, job.id, self._execution_id, self.lost_after
        )
        if not claimed:
            # Too slow between dequeue and start: maintenance already handed the job back.
            self.log.warning("Worker %s: claim on job %s ran out; not running it", self.name, job.id)
            self.set_state(WorkerStatus.IDLE)
            return
        super().execute_job(job, queue)

    def prepare_execution(self, job) -> Execution:
        """RQ's execution record, under the id the dequeue claimed the job with."""
        ttl = self.get_heartbeat_ttl(job)
        execution = Execution(
            id=self._execution_id or uuid4().hex,
            job_id=job.id,
            connection=self.connection,
            worker_name=self.name,
        )
        with self.connection.pipeline() as pipeline:
            execution.save(ttl=ttl, pipeline=pipeline)
            ExecutionRegistry(job_id=job.id, connection=pipeline).add(
                execution=execution, ttl=ttl, pipeline=pipeline
            )
            job.started_job_registry.add_execution(execution, pipeline=pipeline, ttl=ttl, xx=False)
            self.set_state(WorkerStatus.BUSY, pipeline=pipeline)
            pipeline.execute()
        self.execution = execution
        return execution

    # --- staying accountable -----------------------------------------------------------

    def heartbeat(self, timeout: int | None = None, pipeline=None):
        """RQ's heartbeat in one round trip (RQ sends its two commands one after the other)."""
        if pipeline is not None:
            return super().heartbeat(timeout, pipeline=pipeline)
        with self.connection.pipeline(transaction=False) as batch:
            super().heartbeat(timeout, pipeline=batch)
            batch.execute()

    def get_heartbeat_ttl(self, job) -> int:
        """Seconds after the last heartbeat before the job counts as abandoned."""
        return self.lost_after

    def clean_registries(self):
        run_maintenance(self.connection, self.maintenance_interval)
        self.last_cleaned_at = now()

    def setup_work_horse_signals(self):
        super().setup_work_horse_signals()
        _die_with_parent(self.pid)

    # --- stopping ---------------------------------------------------------------------

    def request_stop(self, signum, frame):
        """Warm shutdown: the running job may finish within ``shutdown_seconds``, else it is put back."""
        if self.shutdown_seconds is not None and self._put_back_at is None:
            self._put_back_at = time.monotonic() + self.shutdown_seconds
        # RQ raises StopRequested from the signal handler when no job runs, and keeps no other
        # trace of the request. Raised inside code that catches every exception (a log handler's
        # emit does), it is lost and the worker would go on taking jobs: the flag makes the
        # request stick, and the dequeue loop and RQ's work loop both look at it.
        self._stop_requested = True
        super().request_stop(signum, frame)

    def maintain_heartbeats(self, job):
        # Called every JOB_HEARTBEAT_SECONDS while the work horse runs.
        if self._put_back_at is not None and time.monotonic() >= self._put_back_at and self.horse_pid:
            self.log.warning("Worker %s: stopping; job %s still runs, putting it back", self.name, job.id)
            self._putting_back = job.id
            self.kill_horse()
            return
        super().maintain_heartbeats(job)

    def handle_job_failure(self, job, queue, started_job_registry=None, exc_string=""):
        if self._putting_back != job.id:
            return super().handle_job_failure(job, queue, started_job_registry, exc_string)
        # Stopped by this worker's shutdown, not failed: back to the front of its lane, retries intact.
        with self.connection.pipeline() as pipeline:
            self.cleanup_execution(job, pipeline=pipeline)
            job.set_status(JobStatus.QUEUED, pipeline=pipeline)
            lanes.put_back(pipeline, job.id, queue.name)
            pipeline.execute()
        self._putting_back = None
        log.info("job put back: its worker is stopping", extra={"job_id": job.id, "queue": queue.name})

    # --- running it --------------------------------------------------------------------

    def horse_started(self):
        # The pooled database connections inherited from the worker are dropped (a socket must
        # never be shared by two processes); the horse's own pool then serves job after job.
        with self.app.app_context():
            for engine in db.engines.values():
                engine.dispose(close=False)

    @contextmanager
    def horse_job_context(self, job):
        # The tenant comes from the job alone (None for system jobs) and is reset afterwards,
        # so a job never inherits the tenant of the job before it.
        with self.app.app_context(), tenant_context(job.meta.get("tenant_id")):
            try:
                yield
            finally:
                db.session.remove()

    def horse_state(self) -> tuple:
        return (*super().horse_state(), dict(self.app.config))


def worker_connection(app: Flask) -> Redis:
    """A Redis client for the worker loop: no socket timeout, since dequeue blocks."""
    return Redis.from_url(app.config["REDIS_URL"], socket_connect_timeout=5, health_check_interval=30)


def warn_unless_noeviction(connection: Redis) -> str | None:
    """The queue Redis must never evict a key (an evicted job is a lost job); returns the policy if not."""
    try:
        policy = connection.config_get("maxmemory-policy").get("maxmemory-policy")
    except redis.exceptions.ResponseError:  # CONFIG disabled (some managed Redis): nothing to check
        return None
    if policy and policy != "noeviction":
        log.warning(
            "the queue Redis evicts keys: set maxmemory-policy noeviction or jobs can be lost",
            extra={"maxmemory_policy": policy},
        )
        return policy
    return None


def run_worker(
    app: Flask,
    queues=QUEUES,
    burst: bool = False,
    name: str | None = None,
    worker_class: type[AppWorker] = AppWorker,
    shutdown_seconds: float | None = None,
) -> bool:
    """Work the given queues in priority order until stopped (or empty, with ``burst``)."""
    load_job_modules()  # every job declared before the first fork
    connection = worker_connection(app)
    warn_unless_noeviction(connection)
    worker = worker_class(
        list(queues), connection=connection, name=name, app=app, shutdown_seconds=shutdown_seconds
    )
    log.info("worker starting", extra={"queues": list(queues), "burst": burst})
    return worker.work(burst=burst, logging_level=app.config["LOG_LEVEL"])
