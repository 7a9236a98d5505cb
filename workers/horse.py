"""A work horse that runs many jobs: forked once, handed one job at a time, replaced when in doubt.

RQ's ``Worker`` forks a work horse for every job and lets it exit afterwards. For a ~100 MB
process the fork, the copy-on-write faults that follow it and the exit cost more than a short
job itself (about 25 ms a job). :class:`ReusedHorseWorker` keeps RQ's division of labour — the
worker takes jobs and supervises, the horse runs them — but forks the horse once and hands it
the next job over a pipe:

- **The worker** dequeues, records the execution, sends the job to the horse and waits for its
  answer, confirming the job every ``job_monitoring_interval`` as RQ's worker does (its
  ``maintain_heartbeats``). It kills the horse when a job runs ``hung_job_grace_seconds`` past
  its timeout (RQ kills at 60 s past), when a stop-job command or a stopping worker asks for it,
  and when the worker itself stops hard. A horse that dies with a job — killed or crashed — is
  handled exactly as RQ handles a forked horse that exits with one: the job fails as
  "terminated unexpectedly" (and is retried as its retries say). The next job gets a new horse.
- **The horse** runs each job through RQ's own ``perform_job`` (job status, result and its TTL,
  failed registry, retries, callbacks: all RQ's), with RQ's signal-based timeout, in a fresh copy
  of the horse's initial ``contextvars`` context: whatever context variable a job sets (its
  tenant, an ``unscoped`` reason, Flask's app context) is gone before the next one starts.
  ``horse_job_context`` (overridden by the app worker) adds the per-job app context.
- **Replaced when in doubt**: the horse carries on only after a job that succeeded and left the
  process as it found it — the same threads, signal mask and handlers, working directory,
  environment and whatever ``horse_state`` adds (the app's config). After anything else (a
  failed or timed-out job, a job that started a thread, changed the environment …) and after
  ``jobs_per_horse`` jobs (bounding slow leaks) it answers "retiring" and exits; the worker forks
  a fresh horse for the next job.
- **Dies with its worker**: the horse is in its own process group (RQ's ``setpgrp``, so a
  terminal's Ctrl+C reaches only the worker), and ``horse_started`` runs in it first (the app
  worker sets ``PR_SET_PDEATHSIG`` there). When the worker exits, the horse reads the end of
  the pipe and exits too.
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
import json
import logging
import os
import random
import signal
import threading
import time
from datetime import datetime
from multiprocessing import Pipe
from multiprocessing.connection import Connection

from rq import Worker
from rq.exceptions import InvalidJobOperation
from rq.executions import Execution
from rq.job import JobStatus
from rq.utils import now
from rq.worker.base import logger

log = logging.getLogger(__name__)

#: The horse's answers: the job is done and the horse takes the next; or it is done and the
#: horse exits (the worker forks a new one for the next job).
DONE = b"done"
RETIRING = b"retiring"

#: Signals whose handlers a job must leave as it found them for its horse to be reused.
_WATCHED_SIGNALS = (signal.SIGALRM, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)


class ReusedHorseWorker(Worker):
    """RQ's forking worker, with one work horse that runs job after job (see the module docstring)."""

    #: A horse is replaced after this many jobs, so a slow leak in job code stays bounded.
    jobs_per_horse = 1000
    #: How long past its timeout a job may run before the worker kills its horse: RQ's own
    #: timeout (an alarm in the horse) cannot interrupt a call that never returns to Python.
    hung_job_grace_seconds: float = 60

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._horse_channel: Connection | None = None

    # --- the worker's side --------------------------------------------------------------

    def fork_work_horse(self, job, queue):
        """Hand ``job`` to the horse, forking one first if there is none (or it died meanwhile)."""
        message = json.dumps([job.id, queue.name, self.execution.id, self.execution.created_at.isoformat()])
        for _attempt in range(2):
            if not self._horse_alive():
                self._start_horse()
            try:
                self._horse_channel.send_bytes(message.encode())
            except OSError:  # it died between the check and the send: a new one takes the job
                self.wait_for_horse()
                continue
            self.procline(f"Horse {self._horse_pid} running {job.id} since {time.time()}")
            return
        raise RuntimeError("the work horse died twice before it could take a job")

    def monitor_work_horse(self, job, queue):
        """Wait for the horse's answer; meanwhile what RQ's ``monitor_work_horse`` does while it waits."""
        job.started_at = now()
        timeout = job.timeout or self.queue_class.DEFAULT_TIMEOUT
        horse_pid = self._horse_pid
        answer = None
        while True:
            try:
                if self._horse_channel.poll(self.job_monitoring_interval):
                    answer = self._horse_channel.recv_bytes()
                    break
            except (EOFError, OSError):  # the horse exited with the job
                break
            if self._horse_exited():  # gone without closing the pipe (a process it started holds it)
                break
            self.set_current_job_working_time((now() - job.started_at).total_seconds())
            if timeout != -1 and self.current_job_working_time > timeout + self.hung_job_grace_seconds:
                self.log.warning(
                    "Worker %s: job %s runs %ss past its timeout; killing its work horse",
                    self.name,
                    job.id,
                    self.hung_job_grace_seconds,
                )
                self.heartbeat(self.job_monitoring_interval + 60)
                self.kill_horse()
                break
            self.maintain_heartbeats(job)
        self.set_current_job_working_time(0)
        if answer == DONE:
            return
        _pid, ret_val, rusage = self.wait_for_horse()
        if answer == RETIRING:
            return
        self._job_lost_with_horse(job, queue, horse_pid, ret_val, rusage)

    def _job_lost_with_horse(self, job, queue, horse_pid, ret_val, rusage) -> None:
        """The horse died with the job: as RQ's ``monitor_work_horse`` after a horse's bad exit."""
        try:
            job_status = job.get_status()
        except InvalidJobOperation:
            return  # the job finished and its record already expired
        if self._stopped_job_id == job.id:
            self.log.warning(
                "Worker %s: job %s stopped by user, moving job to FailedJobRegistry", self.name, job.id
            )
            if job.stopped_callback:
                job.execute_stopped_callback(self.death_penalty_class)
            self.handle_job_failure(
                job, queue=queue, exc_string="Job stopped by user, work-horse terminated."
            )
        elif job_status not in (JobStatus.FINISHED, JobStatus.FAILED):
            job.ended_at = now()
            signal_msg = f" (signal {os.WTERMSIG(ret_val)})" if ret_val and os.WIFSIGNALED(ret_val) else ""
            exc_string = f"Work-horse terminated unexpectedly; waitpid returned {ret_val}{signal_msg}; "
            self.log.warning("Worker %s: job %s failed (%s)", self.name, job.id, exc_string)
            self.handle_work_horse_killed(job, horse_pid, ret_val, rusage)
            self.handle_job_failure(job, queue=queue, exc_string=exc_string)

    def _start_horse(self) -> None:
        ours, theirs = Pipe()
        # The horse never collects what it inherits, so its garbage collector does not touch
        # (and copy) the worker's memory pages; the worker collects its own as before.
        gc.freeze()
        try:
            pid = os.fork()
            if pid == 0:
                ours.close()
                self._serve_jobs(theirs)  # never returns
        finally:
            gc.unfreeze()
        theirs.close()
        self._horse_pid = pid
        self._horse_channel = ours
        self.log.debug("Worker %s: forked work horse %s", self.name, pid)

    def _horse_alive(self) -> bool:
        return bool(self._horse_pid) and self._horse_channel is not None and not self._horse_exited()

    def _horse_exited(self) -> bool:
        """True (and the horse reaped) when the horse has exited."""
        if not self._horse_pid:
            return True
        try:
            pid, status = os.waitpid(self._horse_pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self._horse_pid, None
        if pid == 0:
            return False
        self._horse_reaped(status)
        return True

    def _horse_reaped(self, status) -> None:
        self._last_horse_status = status
        self._horse_pid = 0
        if self._horse_channel is not None:
            self._horse_channel.close()
            self._horse_channel = None

    def wait_for_horse(self):
        """Wait for the horse to exit (it was killed, or it said it is exiting); reap it."""
        if not self._horse_pid:
            return None, getattr(self, "_last_horse_status", None), None
        pid = status = rusage = None
        with contextlib.suppress(ChildProcessError):
            pid, status, rusage = os.wait4(self._horse_pid, 0)
        self._horse_reaped(status)
        return pid, status, rusage

    def kill_horse(self, sig: signal.Signals = signal.SIGKILL):
        pid = self._horse_pid  # read once: never signal group 0, the worker's own
        if not pid:
            return
        try:
            os.killpg(pid, sig)  # the horse leads its own process group (setpgrp)
            self.log.info("Worker %s: killed horse pid %s", self.name, pid)
        except ProcessLookupError:
            self.log.debug("Worker %s: horse already dead", self.name)

    def stop_horse(self, seconds: float = 10) -> None:
        """Close the pipe (an idle horse exits on it), wait up to ``seconds``, then kill it."""
        if not self._horse_pid:
            return
        if self._horse_channel is not None:
            self._horse_channel.close()
            self._horse_channel = None
        deadline = time.monotonic() + seconds
        while not self._horse_exited():
            if time.monotonic() >= deadline:
                self.kill_horse()
                self.wait_for_horse()
                return
            time.sleep(0.01)

    def teardown(self):
        self.stop_horse()
        super().teardown()

    # --- the horse's side ---------------------------------------------------------------

    def horse_started(self) -> None:
        """Run once in each new horse, before its first job (hook)."""

    def horse_job_context(self, job):
        """A context manager around each job in the horse (hook)."""
        return contextlib.nullcontext()

    def horse_state(self) -> tuple:
        """What a job must leave unchanged for the horse to run the next one (hook; extend it)."""
        return (
            tuple(sorted(thread.ident for thread in threading.enumerate())),
            frozenset(signal.pthread_sigmask(signal.SIG_BLOCK, [])),
            tuple(signal.getsignal(signum) for signum in _WATCHED_SIGNALS),
            os.getcwd(),
            dict(os.environ),
        )

    def _serve_jobs(self, channel: Connection) -> None:
        """The horse's life: run the jobs the worker sends until told to stop or in doubt; exit."""
        exit_code = 1
        try:
            os.setpgrp()
            random.seed()
            self.setup_work_horse_signals()
            self._is_horse = True
            self._horse_pid = 0
            self.log = logger
            signal.signal(signal.SIGALRM, signal.SIG_DFL)  # as RQ's timeout leaves it after each job
            self.horse_started()
            baseline = contextvars.copy_context()
            state = self.horse_state()
            for served in range(1, self.jobs_per_horse + 1):
                try:
                    message = channel.recv_bytes()
                except EOFError:  # the worker is done with this horse
                    break
                job, queue = self._job_from(message)
                succeeded = baseline.copy().run(self._run_one, job, queue)
                same = succeeded and self.horse_state() == state
                if same and served < self.jobs_per_horse:
                    channel.send_bytes(DONE)
                    continue
                if succeeded and not same:
                    log.info("work horse replaced: a job changed its process state", extra={"job_id": job.id})
                channel.send_bytes(RETIRING)
                break
            exit_code = 0
        except BaseException:
            log.exception("work horse failed outside a job")
        finally:
            os._exit(exit_code)

    def _job_from(self, message: bytes):
        job_id, queue_name, execution_id, created_at = json.loads(message)
        job = self.job_class.fetch(job_id, connection=self.connection, serializer=self.serializer)
        queue = self.queue_class(
            queue_name,
            connection=self.connection,
            job_class=self.job_class,
            serializer=self.serializer,
            death_penalty_class=self.death_penalty_class,
        )
        execution = Execution(
            id=execution_id, job_id=job_id, connection=self.connection, worker_name=self.name
        )
        execution.created_at = datetime.fromisoformat(created_at)
        self.execution = execution
        return job, queue

    def _run_one(self, job, queue) -> bool:
        """RQ's ``perform_job`` inside the per-job context; True when the job succeeded."""
        with self.horse_job_context(job):
            return bool(self.perform_job(job, queue))
