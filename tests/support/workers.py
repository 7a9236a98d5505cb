"""Real worker processes for the job tests: started like the Procfile does, killed like a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from app.config import PROJECT_ROOT

#: Set once per test run and inherited by every process the tests start (directly, through
#: supervisord, or orphaned), so that the run can tell its own processes from any other.
RUN_MARKER = "WORKLANE_TEST_RUN"
#: Command-line words of the processes that take the run's jobs or serve its pages.
_WORKLANE_COMMANDS = ("wsgi", "workers.", "supervisord", "nginx", "honcho")


def worklane_processes() -> list[psutil.Process]:
    """The web, worker, scheduler, supervisord and nginx processes of this test run now alive."""
    marker = os.environ.get(RUN_MARKER)
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        if process.pid == os.getpid() or process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if not any(word in " ".join(process.info["cmdline"] or ()) for word in _WORKLANE_COMMANDS):
            continue
        try:
            if marker and process.environ().get(RUN_MARKER) == marker:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def poll(condition, timeout: float, interval: float = 0.05):
    """Call ``condition`` until it returns something truthy, which is returned; None after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    return None


def wait_for(condition, timeout: float, message: str, interval: float = 0.05):
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    value = poll(condition, timeout, interval)
    if not value:
        pytest.fail(f"timed out after {timeout}s: {message}")
    return value


def stop_process(process: subprocess.Popen, seconds: float) -> int:
    """SIGTERM (a warm shutdown), then SIGKILL if it is still there after ``seconds``; the exit status."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


class WorkerProcess:
    """``flask --app wsgi worker`` (or another worker module) as a child process."""

    def __init__(self, env: dict[str, str], log_path, module: str | None = None):
        if module:
            command = [sys.executable, "-m", module]
        else:
            command = [sys.executable, "-m", "flask", "--app", "wsgi", "worker"]
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, cwd=PROJECT_ROOT, env={**os.environ, **env}, stdout=log, stderr=log
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """SIGKILL the worker process itself, as the kernel's OOM killer or a lost machine would."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def kill_mid_job(self, horse_pid: int) -> float:
        """SIGKILL the worker while its work horse ``horse_pid`` runs a job, wait for the horse to
        die with it, and kill whatever of its processes is left; returns when the worker was killed."""
        leftovers = self.descendants()
        self.kill()
        killed_at = time.time()
        try:
            wait_for(lambda: gone(horse_pid), 10, "the work horse to die with its worker")
        finally:
            for process in leftovers:
                if process.is_running():
                    process.kill()
        return killed_at

    def stop(self) -> None:
        """SIGTERM (a warm shutdown), then SIGKILL if it is still there after 20 s."""
        stop_process(self.process, 20)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
