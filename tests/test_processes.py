"""The Procfile processes, run the way operators and `make run` run them."""

from __future__ import annotations

import http.cookiejar
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import psutil
import pytest
from rq import Queue, Worker
from rq.job import Job

from app.config import PROJECT_ROOT
from app.core.queue.queues import DEFAULT
from tests.conftest import csrf_token_from, free_port
from tests.support.launcher import run_script
from tests.support.workers import wait_for

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.processes


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def assert_all_gone(processes: list[psutil.Process]) -> None:
    alive = [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], [(p.pid, p.name()) for p in alive]


def test_procfile_declares_the_four_processes():
    """The Procfile has web, worker and scheduler (flask CLI) and release (migrations)."""
    entries = dict(
        line.split(":", 1) for line in (PROJECT_ROOT / "Procfile").read_text().splitlines() if line.strip()
    )
    assert set(entries) == {"web", "worker", "scheduler", "release"}
    assert "flask --app wsgi web" in entries["web"]
    assert "${PORT" in entries["web"] and "${WEB_THREADS" in entries["web"]
    assert "flask --app wsgi worker" in entries["worker"]
    assert "flask --app wsgi scheduler" in entries["scheduler"]
    assert "db upgrade" in entries["release"]


def test_three_honcho_workers_share_one_queue(migrated_env, redis_client):
    """`honcho start -c worker=3` runs three workers that all take jobs from the same queue."""
    env = {**os.environ, **migrated_env, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    honcho = subprocess.Popen(
        [str(BIN / "honcho"), "start", "--no-colour", "-c", "worker=3", "worker"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: len(Worker.all(connection=redis_client)) == 3, 30, "three workers registered")
        processes = descendants(honcho.pid)
        queue = Queue(DEFAULT, connection=redis_client)
        jobs = [queue.enqueue("time.sleep", 1.0) for _ in range(6)]
        wait_for(
            lambda: all(job.get_status(refresh=True) == "finished" for job in jobs), 30, "six jobs finished"
        )
        worker_names = {Job.fetch(job.id, connection=redis_client).worker_name for job in jobs}
        assert len(worker_names) == 3
    finally:
        honcho.send_signal(signal.SIGTERM)
        honcho.wait(30)
    assert_all_gone(processes)


class _Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_make_run_prints_the_address_only_after_every_process_said_it_is_up():
    """A worker still importing (silent, on a busy machine) holds the banner back until it is up."""
    run = run_script()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ready)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    read_end, write_end = os.pipe()
    stream, out = os.fdopen(read_end, "r"), os.fdopen(write_end, "w", buffering=1)
    honcho = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    relay = run.Relay(stream)
    try:
        out.write("06:43:19 system      | worker.1 started (pid=2)\n")
        out.write('06:43:20 web.1       | {"message":"web serving"}\n')
        out.write('06:43:20 scheduler.1 | {"message":"scheduler started"}\n')
        # The web answers and the output has been quiet, but the worker has said nothing yet.
        assert run.wait_until_started(url, honcho, relay, quiet=0.2, limit=2) is False
        out.write('06:43:24 worker.1    | {"message":"*** Listening on high, default, low..."}\n')
        assert run.wait_until_started(url, honcho, relay, quiet=0.2, limit=30) is True
    finally:
        honcho.kill()
        honcho.wait()
        out.close()
        relay.finish()
        stream.close()
        server.shutdown()
        server.server_close()


def _http(opener, url, data=None):
    request = urllib.request.Request(url, data=data)
    with opener.open(request, timeout=10) as response:
        return response.status, response.geturl(), response.read().decode()


@pytest.mark.parametrize(
    ("stop_signal", "whole_group"),
    [(signal.SIGINT, True), (signal.SIGTERM, False)],
    ids=["ctrl-c-in-terminal", "sigterm-to-launcher"],
)
def test_make_run_serves_runs_a_job_and_stops_cleanly(tmp_path, stop_signal, whole_group):
    """`make run`: private Redis and mail sink, migrations, web+worker+scheduler; stopping it stops all."""
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"REDIS_URL", "DATABASE_URL", "SECRET_KEY", "WORKLANE_ENV"}
    }
    env.update({"PORT": str(port), "WORKLANE_INSTANCE_PATH": str(tmp_path / "instance")})
    env["OPERATOR_EMAILS"] = "demo@example.com"  # the demo login runs the system check
    launcher = subprocess.Popen(
        [sys.executable, "scripts/run.py"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(line.rstrip("\n") for line in launcher.stdout))
    reader.start()
    banner_line = f"worklane: Worklane is running: open http://127.0.0.1:{port}/"
    base = f"http://127.0.0.1:{port}"
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    processes: list[psutil.Process] = []
    try:

        def ready():
            try:
                return _http(opener, base + "/readyz")[0] == 200
            except OSError:
                return False

        wait_for(ready, 90, "make run to become ready", interval=0.5)
        wait_for(lambda: banner_line in lines, 60, "the address and the login, printed last", interval=0.2)
        processes = descendants(launcher.pid)
        names = " ".join(" ".join(p.cmdline()) for p in processes)
        assert "redis-server" in names and "wsgi web" in names
        assert "app.devmail.sink" in names
        assert "worker" in names and "scheduler" in names
        assert (tmp_path / "instance" / "worklane.db").exists()
        assert (tmp_path / "instance" / "secret_key").exists()

        # The seeded demo organization, with the login the launcher printed.
        _, _, login_page = _http(opener, base + "/login")
        token = csrf_token_from(login_page)
        form = urllib.parse.urlencode(
            {"csrf_token": token, "email": "demo@example.com", "password": "worklane-demo"}
        ).encode()
        _, landed, dashboard = _http(opener, base + "/login", data=form)
        assert landed.endswith("/acme/") and "Acme Corporation" in dashboard

        # The demo login is an operator here: the console's system check runs in the worker.
        _status, _, console = _http(opener, base + "/operators/")
        token = csrf_token_from(console)
        _, job_url, _ = _http(opener, base + "/operators/system-check", data=f"csrf_token={token}".encode())
        assert "/operators/system-check/" in job_url

        def finished():
            body = json.loads(_http(opener, job_url + "/status?format=json")[2])
            return body if body["status"] == "finished" else None

        result = wait_for(finished, 30, "the system check to finish in the worker", interval=0.3)
        assert result["result"]["database"] == "sqlite"
        assert _http(opener, base + "/dev/mail")[0] == 200
    finally:
        if whole_group:
            os.killpg(launcher.pid, stop_signal)  # what Ctrl-C in a terminal does
        else:
            launcher.send_signal(stop_signal)  # a supervisor stopping the launcher alone
        try:
            launcher.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
            reader.join(10)
            launcher.stdout.close()
            pytest.fail("make run did not stop within 40s:\n" + "\n".join(lines[-40:]))
        reader.join(10)
        launcher.stdout.close()
    output = "\n".join(lines)
    # The address and the demo login come after the processes' start-up output, not under it.
    running = lines.index(banner_line)
    banner = lines[running : running + 4]
    assert "worklane: log in as demo@example.com with password worklane-demo" in banner
    assert f"worklane: mail sent by the app: http://127.0.0.1:{port}/dev/mail" in banner
    started = [n for n, line in enumerate(lines) if '"web serving"' in line or "Listening on" in line]
    assert len(started) == 2 and max(started) < running
    assert "stopped the private Redis" in output
    assert "stopped the local mail sink" in output
    assert_all_gone(processes)
