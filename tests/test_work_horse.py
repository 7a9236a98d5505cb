"""One work horse runs job after job: nothing passes from one job to the next, timeouts and hung jobs
are stopped, the horse is replaced after anything unusual, and it never outlives its worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from rq import Retry
from rq.job import JobStatus

from app.config import PROJECT_ROOT
from app.core.queue.queues import enqueue, failed_jobs
from tests.conftest import run_flask
from tests.support.workers import WorkerProcess, gone, wait_for

JOBS = "tests.support.horse_jobs"


def _queue(app, *calls):
    """Enqueue ``(job name, label, extra args, timeout)`` calls in order, all as system jobs (one lane)."""
    with app.app_context():
        return [
            enqueue(f"{JOBS}.{name}", "runs", label, *extra, timeout=timeout)
            for name, label, extra, timeout in calls
        ]


def _runs(redis_client) -> dict[str, dict]:
    return {run["label"]: run for run in map(json.loads, redis_client.lrange("runs", 0, -1))}


def _call(name, label, *extra, timeout=None):
    return (name, label, extra, timeout)


@pytest.mark.processes
def test_a_job_finds_nothing_the_job_before_it_left_in_the_same_process(app, migrated_env, redis_client):
    """Tenant, unscoped reason, g and session state a job sets and never resets do not reach the next job."""
    _queue(app, _call("leave_state_behind", "first"), _call("report_state", "second"))
    result = run_flask(migrated_env, "worker", "--burst")
    assert result.returncode == 0, result.stderr
    runs = _runs(redis_client)
    assert runs["second"]["pid"] == runs["first"]["pid"]  # the same work horse ran both
    assert {name: value for name, value in runs["second"].items() if name not in ("label", "pid")} == {
        "tenant": "none",
        "unscoped": None,
        "g": None,
        "session_info": None,
        "session_new": 0,
    }


@pytest.mark.processes
def test_a_horse_is_replaced_after_a_failed_job_or_a_job_that_changed_its_process(
    app, migrated_env, redis_client
):
    """A failure, a thread left running or a changed environment: the next job runs in a new work horse."""
    _queue(
        app,
        _call("report_state", "a"),
        _call("report_state", "b"),
        _call("fail", "fails"),
        _call("report_state", "after failure"),
        _call("start_a_thread", "thread"),
        _call("report_state", "after thread"),
        _call("change_the_environment", "environment"),
        _call("report_state", "after environment"),
    )
    result = run_flask(migrated_env, "worker", "--burst")
    assert result.returncode == 0, result.stderr
    pid = {label: run["pid"] for label, run in _runs(redis_client).items()}
    assert pid["a"] == pid["b"] == pid["fails"]
    assert pid["after failure"] != pid["fails"]
    assert pid["thread"] == pid["after failure"]
    assert pid["after thread"] != pid["thread"]
    assert pid["environment"] == pid["after thread"]
    assert pid["after environment"] != pid["environment"]


@pytest.mark.processes
def test_a_horse_is_replaced_after_its_quota_of_jobs(app, migrated_env, redis_client, tmp_path):
    """A work horse runs at most ``jobs_per_horse`` jobs (here two), then a new one takes over."""
    _queue(app, *(_call("report_state", str(n)) for n in range(5)))
    result = subprocess.run(
        [sys.executable, "-m", "tests.support.short_lived_horse_worker"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **migrated_env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    pid = [_runs(redis_client)[str(n)]["pid"] for n in range(5)]
    assert pid[0] == pid[1] != pid[2] == pid[3] != pid[4]


def _failure_before_the_next_job(app, migrated_env, redis_client, failing) -> str:
    """Queue the call ``failing``, then one reporting "after", and run a burst worker: the first
    job fails, the next one finishes. Returns the first job's error."""
    first, after = _queue(app, failing, _call("report_state", "after"))
    result = run_flask(migrated_env, "worker", "--burst")
    assert result.returncode == 0, result.stderr
    [entry] = [entry for entry in failed_jobs(redis_client) if entry["id"] == first.id]
    assert after.get_status(refresh=True) == JobStatus.FINISHED
    return entry["error"]


@pytest.mark.processes
def test_a_job_past_its_timeout_fails_and_the_next_job_runs(app, migrated_env, redis_client):
    """A job that outlives its timeout is stopped and failed with a timeout error; the next job runs."""
    slow = _call("sleep_for", "slow", 60, timeout=1)
    assert "JobTimeoutException" in _failure_before_the_next_job(app, migrated_env, redis_client, slow)
    assert set(_runs(redis_client)) == {"slow", "after"}


@pytest.mark.processes
def test_a_hung_job_that_no_alarm_reaches_is_killed_and_the_next_job_runs(app, migrated_env, redis_client):
    """A job stuck where its own timeout cannot interrupt it is killed by its worker; the next job runs."""
    hung = _call("hang", "hung", 120, timeout=1)
    error = _failure_before_the_next_job(app, migrated_env, redis_client, hung)
    assert "Work-horse terminated unexpectedly" in error
    runs = _runs(redis_client)
    assert runs["after"]["pid"] != runs["hung"]["pid"]
    assert gone(runs["hung"]["pid"])


@pytest.mark.processes
@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_an_idle_horse_ends_with_its_worker(app, migrated_env, redis_client, tmp_path, how):
    """A worker killed (SIGKILL) or stopped (SIGTERM) between jobs leaves no work horse behind."""
    worker = WorkerProcess(migrated_env, tmp_path / "worker.log")
    try:
        _queue(app, _call("report_state", "one"))
        run = wait_for(lambda: _runs(redis_client).get("one"), 30, "the job to run")
        horse = run["pid"]
        assert horse != worker.pid and not gone(horse)  # the idle horse waits for the next job
        if how == "SIGKILL":
            worker.kill()
        else:
            worker.stop()
            assert worker.process.returncode == 0, worker.output()
        wait_for(lambda: gone(horse), 10, "the work horse to end with its worker")
    finally:
        worker.stop()


@pytest.mark.processes
def test_a_reused_horse_dies_with_its_killed_worker_and_its_job_runs_again(
    app, migrated_env, redis_client, tmp_path
):
    """SIGKILL of a worker mid-job, in a horse that ran a job before: the horse dies, the job runs again."""
    first = WorkerProcess(migrated_env, tmp_path / "first.log")
    try:
        _queue(app, _call("report_state", "before"))
        before = wait_for(lambda: _runs(redis_client).get("before"), 30, "the first job to run")
        with app.app_context():
            job = enqueue("tests.support.jobs.block_until_released", "mid-job", retry=Retry(max=1))
        wait_for(lambda: redis_client.llen("started:mid-job"), 30, "the second job to start")
        horse = int(redis_client.lindex("started:mid-job", 0).split()[1])
        assert horse == before["pid"]  # the horse that ran the first job runs the second
        first.kill_mid_job(horse)
    finally:
        first.stop()
    redis_client.rpush("release:mid-job", "go")
    second = WorkerProcess(migrated_env, tmp_path / "second.log")
    try:
        wait_for(lambda: job.get_status(refresh=True) == JobStatus.FINISHED, 40, "the job to run again")
    finally:
        second.stop()
    assert redis_client.llen("started:mid-job") == 2
