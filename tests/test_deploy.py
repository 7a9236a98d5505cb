"""The production topology: nginx from deploy/ in front of web processes that stop gracefully,
all of them supervised by supervisord from the config `honcho export` writes."""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import psutil
import psycopg
import pytest
from rq import Queue, Worker
from rq.registry import FailedJobRegistry
from sqlalchemy import select

from app.config import PROJECT_ROOT, normalize_database_url
from app.core.queue.queues import DEFAULT
from app.core.tenancy import unscoped
from app.extensions import db
from app.models import Comment
from tests.accounts import PASSWORD
from tests.conftest import APP_ROLE, _with_user, csrf_token_from, free_port
from tests.factories import OWNER, make_acme
from tests.support.http import HttpBrowser
from tests.support.nginx import render_nginx
from tests.support.workers import WorkerProcess, gone, poll, stop_process, wait_for

pytestmark = pytest.mark.processes
#: Clients posting comments at once during the rolling restart.
CLIENTS = 6

BIN = Path(sys.executable).parent
DEPLOY = PROJECT_ROOT / "deploy"
STATIC = PROJECT_ROOT / "app" / "static"


def _tool(variable: str) -> str:
    path = os.environ.get(variable, "")
    if not path or not Path(path).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{variable} must point at the program in CI")
        pytest.skip(f"no {variable} (scripts/test.sh installs nginx and supervisor)")
    return path


def answers(url: str, **headers) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def get(url: str, source: str | None = None, headers: dict | None = None):
    """A GET with its own connection, from ``source`` (another loopback address) when given."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname, parts.port, timeout=30, source_address=(source, 0) if source else None
    )
    try:
        connection.request(
            "GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers or {}
        )
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def consecutive_free_ports() -> int:
    """A port P with P and P+1 free (honcho gives web-1 P and web-2 P+1)."""
    while True:
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        if port + 1 < 65000:
            return port


# --- nginx -------------------------------------------------------------------------------------


class Nginx:
    def __init__(self, directory: Path, web_ports: list[int]):
        self.binary = _tool("WORKLANE_NGINX")
        self.port = free_port()
        self.directory = directory
        self.conf = render_nginx(directory, self.port, web_ports)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        check = subprocess.run(
            [self.binary, "-t", "-p", str(self.directory), "-c", str(self.conf)],
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, check.stderr
        with open(self.directory / "stderr.log", "ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "-p", str(self.directory), "-c", str(self.conf), "-g", "daemon off;"],
                stdout=log,
                stderr=log,
            )
        wait_for(lambda: not refuses(self.port), 15, "nginx listening")
        return self

    def __exit__(self, *exc):
        stop_process(self.process, 10)


# --- web processes and the supervised stack ----------------------------------------------------


def web_env(migrated_env) -> dict[str, str]:
    # The stack connects to PostgreSQL directly, not through the test rig's PgBouncer: the
    # rolling-restart test tells which web process waits on the database by its connections'
    # ports, which a pooler hides.
    direct = {}
    if migrated_env.get("DATABASE_POOLER"):
        admin_url = normalize_database_url(os.environ["TEST_POSTGRES_URL"])
        direct = {"DATABASE_URL": _with_user(admin_url, APP_ROLE), "DATABASE_POOLER": ""}
    return {
        **migrated_env,
        **direct,
        "PROXY_COUNT": "1",
        "LOG_LEVEL": "INFO",
        "HOST": "127.0.0.1",
        "WEB_THREADS": "4",
        "WEB_SHUTDOWN_SECONDS": "10",
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }


class WebProcess:
    """``flask --app wsgi web`` on a free port."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.port = free_port()
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "wsgi", "web", "--port", str(self.port)],
                cwd=PROJECT_ROOT,
                env={**os.environ, **env},
                stdout=log,
                stderr=log,
            )
        wait_for(
            lambda: self.process.poll() is not None or answers(self.url + "/healthz"), 60, "web answering"
        )
        assert self.process.poll() is None, self.output()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


class Stack:
    """supervisord running `honcho export`'s config (web x2, worker, scheduler) behind nginx."""

    def __init__(self, directory: Path, env: dict[str, str]):
        self.supervisord = _tool("WORKLANE_SUPERVISORD")
        _tool("WORKLANE_NGINX")
        self.directory = directory
        self.base_port = consecutive_free_ports()
        self.web_ports = [self.base_port, self.base_port + 1]
        (directory / "log").mkdir()
        env_file = directory / "env"
        env_file.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
        user = psutil.Process().username()
        exported = subprocess.run(
            [
                str(BIN / "honcho"),
                "export",
                "-t",
                str(DEPLOY / "supervisord"),
                "-e",
                str(env_file),
                "-p",
                str(self.base_port),
                "-c",
                "web=2,worker=1,scheduler=1,release=0",
                "-a",
                "worklane",
                "-l",
                str(directory / "log"),
                "-u",
                user,
                "supervisord",
                str(directory / "conf.d"),
            ],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
        )
        assert exported.returncode == 0, exported.stderr
        self.programs = directory / "conf.d" / "worklane.conf"
        socket_path = directory / "supervisor.sock"
        self.conf = directory / "supervisord.conf"
        self.conf.write_text(
            f"[unix_http_server]\nfile={socket_path}\n\n"
            f"[supervisord]\nlogfile={directory}/supervisord.log\npidfile={directory}/supervisord.pid\n"
            f"childlogdir={directory}/log\nnodaemon=true\n\n"
            "[rpcinterface:supervisor]\n"
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
            f"[supervisorctl]\nserverurl=unix://{socket_path}\n\n"
            f"[include]\nfiles = {directory}/conf.d/*.conf\n"
        )
        (directory / "nginx").mkdir()
        self.nginx = Nginx(directory / "nginx", self.web_ports)
        self.process: subprocess.Popen | None = None

    @property
    def supervisorctl(self) -> list[str]:
        return [str(Path(self.supervisord).parent / "supervisorctl"), "-c", str(self.conf)]

    def pid(self, program: str) -> int:
        result = subprocess.run(
            [*self.supervisorctl, "pid", f"worklane:{program}"], capture_output=True, text=True
        )
        return int(result.stdout.strip() or 0)

    def log(self, program: str) -> str:
        path = self.directory / "log" / f"{program}.error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def diagnostics(self) -> str:
        logs = [*sorted((self.directory / "log").glob("*.log")), self.directory / "supervisord.log"]
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in logs if p.exists())

    def wait(self, condition, timeout: float, message: str):
        if not poll(condition, timeout):
            pytest.fail(f"timed out after {timeout}s: {message}\n{self.diagnostics()}")

    def __enter__(self):
        self.process = subprocess.Popen(
            [self.supervisord, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            for port in self.web_ports:
                self.wait(lambda port=port: answers(f"http://127.0.0.1:{port}/healthz"), 60, f"web on {port}")
            self.wait(lambda: self.pid("worker-1") and self.pid("scheduler-1"), 30, "worker and scheduler")
            self.nginx.__enter__()
        except BaseException:
            stop_process(self.process, 40)
            raise
        return self

    def __exit__(self, *exc):
        self.nginx.__exit__()
        stop_process(self.process, 40)


@pytest.fixture
def stack(tmp_path, migrated_env):
    with Stack(tmp_path, {**web_env(migrated_env), "WEB_THREADS": "8"}) as running:
        yield running


# --- (a) the front proxy -----------------------------------------------------------------------


def test_nginx_serves_pages_and_versioned_static_files_with_long_lifetimes(stack):
    """Pages come from the web processes; /static from disk, cached a year only under a content hash."""
    status, headers, body = get(stack.nginx.url + "/login")
    assert status == 200 and headers["server"] == "nginx" and "x-request-id" in headers
    versioned = re.search(r"/static/([\w/.-]+\.css)\?v=(\w+)", body.decode())
    assert versioned, "the login page links a versioned stylesheet"
    status, headers, content = get(f"{stack.nginx.url}/static/{versioned[1]}?v={versioned[2]}")
    assert status == 200 and content == (STATIC / versioned[1]).read_bytes()
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "x-request-id" not in headers  # nginx answered, not the app
    status, headers, _ = get(f"{stack.nginx.url}/static/{versioned[1]}")
    assert status == 200 and headers["cache-control"] == "public, max-age=3600"
    assert get(stack.nginx.url + "/static/nothing-here.css")[0] == 404


def test_the_app_sees_the_client_address_nginx_forwards_not_a_forged_one(stack):
    """With PROXY_COUNT=1 the app logs the client's own address; a forged X-Forwarded-For is ignored."""
    request_id = "deploy-forwarded-for-check"
    headers = {"X-Forwarded-For": "203.0.113.9", "X-Request-ID": request_id}
    assert get(stack.nginx.url + "/login", source="127.0.0.2", headers=headers)[0] == 200

    def access_line():
        logs = stack.log("web-1") + stack.log("web-2")
        return next((line for line in logs.splitlines() if request_id in line and '"status"' in line), None)

    line = wait_for(access_line, 10, "the request's access log line")
    assert json.loads(line)["remote_addr"] == "127.0.0.2", line


def test_idle_connections_through_nginx_do_not_stop_pages_answering(stack):
    """Three hundred idle connections to nginx (waitress alone went offline at 100): pages still answer."""
    idle = [socket.create_connection(("127.0.0.1", stack.nginx.port)) for _ in range(300)]
    try:
        assert get(stack.nginx.url + "/healthz")[0] == 200
        assert get(stack.nginx.url + "/login")[0] == 200
    finally:
        for connection in idle:
            connection.close()


# --- (b) graceful shutdown of a web process ----------------------------------------------------


def waiting_on_the_database(pids: list[int]) -> set[int]:
    """Which of these processes have a statement waiting on a lock (by their connections' ports)."""
    with psycopg.connect(os.environ["TEST_POSTGRES_URL"], autocommit=True) as watcher:
        query = "SELECT client_port FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        ports = {row[0] for row in watcher.execute(query)}
    return {
        pid for pid in pids if any(c.laddr.port in ports for c in psutil.Process(pid).net_connections("tcp"))
    }


def lock_waiters() -> int:
    """Statements waiting on a lock (a comment's insert, or a row an insert waiting there holds)."""
    with psycopg.connect(os.environ["TEST_POSTGRES_URL"], autocommit=True) as watcher:
        query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        return watcher.execute(query).fetchone()[0]


@contextmanager
def web_serving_acme(app, env: dict[str, str], log_path):
    """Acme committed, and a web process serving it until the block ends."""
    with app.app_context():
        make_acme()
        db.session.commit()
    web = WebProcess(env, log_path)
    try:
        yield web
    finally:
        stop_process(web.process, 10)


@contextmanager
def login_held_by_the_database(web: WebProcess):
    """A login POST in flight on ``web``, waiting on a lock of the users table until the block ends."""
    browser = HttpBrowser(web.url)
    token = csrf_token_from(browser.open("/login").body)
    result = {}

    def log_in():
        try:
            result["page"] = browser.open(
                "/login", {"csrf_token": token, "email": OWNER, "password": PASSWORD}
            )
        except OSError as error:  # the connection was cut
            result["error"] = error

    with psycopg.connect(os.environ["TEST_POSTGRES_URL"]) as locker:
        locker.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        request = threading.Thread(target=log_in)
        request.start()
        wait_for(lambda: lock_waiters() >= 1, 20, "the login waiting on the locked table")
        yield result
        locker.rollback()
    request.join(30)


def test_the_web_process_keeps_its_start_up_objects_out_of_garbage_collections(migrated_env, tmp_path):
    """The web process freezes what start-up made (the app, its modules, the mappers) before serving."""
    web = WebProcess(web_env(migrated_env), tmp_path / "web.log")
    try:
        serving = [
            json.loads(line)
            for line in web.output().splitlines()
            if line.startswith("{") and json.loads(line).get("message") == "web serving"
        ]
        assert serving, web.output()
        assert serving[0]["gc_frozen_objects"] > 50_000, serving[0]
        assert answers(web.url + "/healthz")
    finally:
        stop_process(web.process, 10)


@pytest.mark.postgres_only
def test_sigterm_lets_the_request_in_flight_finish_and_refuses_new_connections(
    app, committed_db, migrated_env, tmp_path
):
    """SIGTERM with a login waiting on the database: it completes, new connections are refused, exit 0."""
    with web_serving_acme(app, web_env(migrated_env), tmp_path / "web.log") as web:
        with login_held_by_the_database(web) as result:
            web.process.send_signal(signal.SIGTERM)
            wait_for(lambda: refuses(web.port), 10, "new connections refused")
            assert web.process.poll() is None  # still finishing the login
        assert "page" in result, result
        assert result["page"].status == 303, result["page"].body[:300]
        assert web.process.wait(20) == 0, web.output()
        assert "web stopping" in web.output()


@pytest.mark.postgres_only
def test_sigterm_waits_for_a_request_no_longer_than_the_shutdown_setting(
    app, committed_db, migrated_env, tmp_path
):
    """A request still running WEB_SHUTDOWN_SECONDS after SIGTERM is cut: the process exits 1 and says so."""
    env = {**web_env(migrated_env), "WEB_SHUTDOWN_SECONDS": "1"}
    with web_serving_acme(app, env, tmp_path / "web.log") as web:
        with login_held_by_the_database(web) as result:
            web.process.send_signal(signal.SIGTERM)
            wait_for(lambda: web.process.poll() is not None, 20, "the web process gone, the login still held")
        assert web.process.returncode == 1
        stopped = [json.loads(line) for line in web.output().splitlines() if '"requests_cut"' in line]
        assert [record["requests_cut"] for record in stopped] == [1], web.output()
        assert "error" in result, result


# --- (c) rolling restart, (d) supervision ------------------------------------------------------


@pytest.mark.postgres_only
def test_rolling_restart_behind_nginx_loses_no_request(app, committed_db, stack):
    """deploy/rolling-restart under GETs and comment POSTs, some POSTs in flight: 0 failures, all stored."""
    with app.app_context():
        make_acme()
        db.session.commit()
    browser = HttpBrowser(stack.nginx.url)
    browser.log_in(OWNER)
    new_issue = browser.open("/acme/projects/WEB/issues/new")
    token = csrf_token_from(new_issue.body)
    form = {"csrf_token": token, "title": "Deploy", "state": "todo", "priority": "0"}
    created = browser.open("/acme/projects/WEB/issues/new", form)
    assert created.status == 303
    issue = urllib.parse.urlsplit(created.location).path
    old_pids = [stack.pid("web-1"), stack.pid("web-2")]
    done = threading.Event()
    failures, posted = [], []

    def client(name: int):
        number = 0
        while not done.is_set():
            try:
                page = browser.open(issue)
                if page.status != 200:
                    failures.append(("GET", page.status, page.body[:200]))
                    continue
                if random.random() < 0.5:  # one more request: POSTs take either turn of nginx's round robin
                    browser.open("/healthz")
                body = f"comment {name}-{number}"
                form = {"csrf_token": csrf_token_from(page.body), "body": body}
                reply = browser.open(issue + "/comments", form)
            except OSError as error:
                failures.append(("connection", error))
                continue
            if reply.status == 303:
                posted.append(body)
            else:
                failures.append(("POST", reply.status, reply.body[:200]))
            number += 1

    clients = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in clients:
        thread.start()
    try:
        wait_for(lambda: len(posted) >= CLIENTS or failures, 60, "comments posted")
        # Pages still read comments; new comments wait, until the first web process, the one
        # told to stop first, holds POSTs in flight (the second is stopped after the lock is gone).
        with psycopg.connect(os.environ["TEST_POSTGRES_URL"]) as locker:
            locker.execute("LOCK TABLE comments IN SHARE MODE")
            seen = []

            def held_on_the_first() -> bool:
                seen[:] = [waiting_on_the_database(old_pids), lock_waiters(), len(clients), len(posted)]
                if old_pids[0] in seen[0]:
                    return True
                # Every client may be held on the other process (nginx's turns are shared with the
                # pages and health checks): one more client, whose POST may take the other turn.
                if len(clients) < 4 * CLIENTS:
                    clients.append(threading.Thread(target=client, args=(len(clients),)))
                    clients[-1].start()
                return False

            if not poll(held_on_the_first, 90, 0.5):
                pytest.fail(
                    f"no POST held on web-1 ({old_pids[0]}) in 90 s: waiting processes {seen[0]}, "
                    f"statements waiting on a lock {seen[1]}, clients {seen[2]}, posted {seen[3]}, "
                    f"failures {failures[:3]}"
                )
            environment = {**os.environ, "SUPERVISORCTL": " ".join(stack.supervisorctl)}
            restart = subprocess.Popen(
                [str(DEPLOY / "rolling-restart"), str(stack.programs)],
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            wait_for(lambda: refuses(stack.web_ports[0]), 30, "web-1 stopping")
            locker.rollback()
        output, _ = restart.communicate(timeout=120)
        assert restart.returncode == 0, output
        settled = len(posted)
        wait_for(lambda: len(posted) >= settled + CLIENTS or failures, 60, "requests after the restart")
    finally:
        done.set()
        for thread in clients:
            thread.join(60)
    assert failures == []
    new_pids = [stack.pid("web-1"), stack.pid("web-2")]
    assert all(new_pids) and not set(new_pids) & set(old_pids)
    with app.app_context(), unscoped("test check"):
        stored = set(db.session.scalars(select(Comment.body)))
    assert set(posted) <= stored


def test_supervisord_restarts_a_killed_worker_while_web_keeps_answering(stack):
    """SIGKILL of the worker: supervisord starts a new one; nginx and both web processes answer throughout."""
    worker = stack.pid("worker-1")
    web_pids = [stack.pid("web-1"), stack.pid("web-2")]
    os.kill(worker, signal.SIGKILL)
    wait_for(lambda: gone(worker), 10, "the worker gone")
    assert get(stack.nginx.url + "/login")[0] == 200
    wait_for(lambda: stack.pid("worker-1") not in (0, worker), 30, "a new worker started")
    assert [stack.pid("web-1"), stack.pid("web-2")] == web_pids
    for port in stack.web_ports:
        assert answers(f"http://127.0.0.1:{port}/healthz")


def sigterm_during_a_job(worker: WorkerProcess, redis_client, seconds: int):
    """Once ``worker`` has registered and started a job sleeping ``seconds``, SIGTERM it; it exits 0.
    Returns the job."""
    wait_for(lambda: len(Worker.all(connection=redis_client)) == 1, 30, "the worker registered")
    job = Queue(DEFAULT, connection=redis_client).enqueue("time.sleep", seconds)
    wait_for(lambda: job.get_status(refresh=True) == "started", 30, "the job started")
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(30) == 0, worker.output()
    return job


def test_sigterm_to_a_worker_lets_its_running_job_finish(migrated_env, redis_client, tmp_path):
    """A worker told to stop (supervisord's SIGTERM) finishes the job it runs, then exits 0."""
    worker = WorkerProcess(migrated_env, tmp_path / "worker.log")
    try:
        job = sigterm_during_a_job(worker, redis_client, 2)
        assert job.get_status(refresh=True) == "finished"
    finally:
        worker.stop()


def test_a_job_outlasting_the_workers_stop_is_put_back_and_run_by_the_next_worker(
    migrated_env, redis_client, tmp_path
):
    """A job still running WORKER_SHUTDOWN_SECONDS after SIGTERM goes back on its queue, not to failed."""
    env = {**migrated_env, "WORKER_SHUTDOWN_SECONDS": "1"}
    stopping = WorkerProcess(env, tmp_path / "stopping.log")
    job = None
    try:
        job = sigterm_during_a_job(stopping, redis_client, 6)
        assert job.get_status(refresh=True) == "queued"
        assert job.id not in FailedJobRegistry(DEFAULT, connection=redis_client).get_job_ids()
    finally:
        stopping.stop()
    successor = WorkerProcess(migrated_env, tmp_path / "successor.log")
    try:
        wait_for(lambda: job.get_status(refresh=True) == "finished", 60, "the job run by the next worker")
    finally:
        successor.stop()


def test_the_web_process_writes_the_line_of_every_request_it_answered_before_it_stops(migrated_env, tmp_path):
    """150 requests then SIGTERM: 150 access lines, whole and in order, and the stop lines after them."""
    web = WebProcess(web_env(migrated_env), tmp_path / "web.log")
    try:
        for n in range(150):
            assert answers(f"{web.url}/healthz?n={n}")
    finally:
        assert stop_process(web.process, 10) == 0, web.output()
    lines = [json.loads(line) for line in web.output().splitlines() if line.startswith("{")]
    numbers = [int(line["message"].split("?n=")[1].split()[0]) for line in lines if "?n=" in line["message"]]
    assert numbers == list(range(150))
    messages = [line["message"] for line in lines]
    assert messages.index("web stopped") > max(i for i, m in enumerate(messages) if "?n=" in m)
