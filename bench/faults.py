"""Fault harness: the deployed processes under load while a service fails, with what people saw.

    .venv/bin/python -m bench.faults                          # every scenario
    .venv/bin/python -m bench.faults redis-pause replica      # some of them
    .venv/bin/python -m bench.faults --list

Not part of the tests. Each scenario starts its own PostgreSQL and Redis (bench/services.py),
migrates an empty database, loads the demo organization and runs the Procfile's processes
against it, then breaks something for real and counts the answers:

- **redis-pause**: signed-in clients load an issue page while Redis is stopped (SIGSTOP) for
  20 s: answers by status before, during and after, p99 latency during the pause, how long
  ``/readyz`` took to answer, and the seconds from SIGCONT until pages and ``/readyz`` are
  healthy again.
- **postgres-restart**: the same load while ``pg_ctl restart -m fast`` runs: 5xx answers and
  connection errors among the requests in flight during the restart and among those sent
  after it, and the seconds after the restart until the last failure.
- **worker-kill**: 2,000 jobs; a worker is killed (SIGKILL) and replaced each time another 50
  have run, until half of them ran, then Redis (append-only file on) is restarted; jobs that
  never ran (queued with retries, as the application's jobs are).
- **replica**: a streaming replica applying changes 2 s late; a person posts a comment and
  opens the issue 1,000 times: how many times the page showed the comment.
- **idle-connections**: nginx from ``deploy/nginx/`` in front of two web processes; 1,000
  connections opened to nginx and left idle; then ``/healthz`` and a warm signed-in page, each
  timed on a new connection.
- **rolling-restart**: the same stack under signed-in load; each web process in turn is stopped
  with SIGTERM (it drains) and started again on its port: answers by status.
- **deploy-with-migration**: a deploy that adds the newest migration. The release before it
  (the parent of the commit that added the migration, checked out in a temporary git worktree)
  builds the database with its own migrations and serves it, two web processes behind nginx;
  under signed-in load (two of the clients commenting) the release step of this checkout runs
  (``flask --app wsgi db upgrade``), then each web process in turn is stopped with SIGTERM and
  this checkout's started on its port: answers by status, the migration's seconds, and whether
  every comment answered 303 was stored. Reported as not run when the previous release cannot
  be checked out (a shallow clone).

Writes ``bench/results/faults-<timestamp>.json``; the figures go in docs/operations.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path
from urllib.parse import urlencode

from bench import load
from bench.services import (
    ROOT,
    Services,
    WebProcess,
    flask,
    flask_processes,
    free_port,
    run_benchmark,
    say,
    stop_processes,
)

DEMO_EMAIL, DEMO_PASSWORD = "demo@example.com", "worklane-demo"
ISSUE_PAGE = "/acme/issues/WEB-1"
#: Short job-recovery periods, as in the tests, so a killed worker's job is re-queued in seconds.
JOB_SETTINGS = {"JOB_HEARTBEAT_SECONDS": "1", "JOB_LOST_AFTER_SECONDS": "4", "JOB_MAINTENANCE_SECONDS": "1"}

SCENARIOS: dict = {}


def scenario(name: str):
    def register(function):
        SCENARIOS[name] = function
        return function

    return register


# --- load that records every answer ----------------------------------------------------------


@dataclass
class Answer:
    started: float
    seconds: float
    status: int | str  # an HTTP status, or the error's name when there was no answer
    expected: int = 200  # what a working system answers (303 to a comment posted)


@dataclass
class Load:
    """One signed-in person per cookie, each opening ``path`` again as soon as it has answered.

    The first ``writers`` of them comment on the issue instead, one comment after another: they
    open the page (for its form's CSRF token) and post the comment (answered 303). The bodies
    of the comments answered 303 are in ``comments``."""

    base_url: str
    cookies: list[str]
    path: str = ISSUE_PAGE
    writers: int = 0
    answers: list[Answer] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        for number, cookie in enumerate(self.cookies):
            person = self._writer if number < self.writers else self._reader
            thread = threading.Thread(target=person, args=(cookie, number), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _client(self, cookie: str) -> load.Client:
        client = load.Client(self.base_url)
        client.connection.timeout = 60
        client.cookie = cookie
        return client

    def _send(self, client: load.Client, method: str, body: str | None = None, expected: int = 200, **get):
        """One request, its answer recorded; the response (None when none came) and the client to
        go on with (a new connection after an error)."""
        started = time.monotonic()
        response = None
        try:
            if method == "GET":
                response = client.get(self.path, **get)
            else:
                form = {"Content-Type": "application/x-www-form-urlencoded"}
                response = client.request(method, f"{self.path}/comments", body=body, headers=form)
            status = response.status
        except (OSError, HTTPException) as exc:  # refused, reset, timed out: no answer
            status = type(exc).__name__
            cookie = client.cookie
            client.close()
            client = self._client(cookie)
            time.sleep(0.05)
        self.answers.append(Answer(started, time.monotonic() - started, status, expected))
        return response, client

    def _reader(self, cookie: str, _number: int) -> None:
        client = self._client(cookie)
        while not self._stop.is_set():
            _response, client = self._send(client, "GET")

    def _writer(self, cookie: str, number: int) -> None:
        client = self._client(cookie)
        written = 0
        while not self._stop.is_set():
            page, client = self._send(client, "GET", encoding="identity")
            token = load.CSRF_TOKEN.search(page.body.decode()) if page and page.status == 200 else None
            if token is None:
                continue
            written += 1
            comment = f"Deploy check {number}-{written}."
            body = urlencode({"csrf_token": token.group(1), "body": comment})
            posted, client = self._send(client, "POST", body, expected=303)
            if posted is not None and posted.status == 303:
                self.comments.append(comment)

    def stop(self) -> list[Answer]:
        self._stop.set()
        for thread in self._threads:
            thread.join(90)
        self.answers.sort(key=lambda answer: answer.started)
        return self.answers


def tally(answers: list[Answer]) -> dict:
    """Answers by status, and the latency percentiles of those that came."""
    counts: dict[str, int] = {}
    for answer in answers:
        key = str(answer.status) if isinstance(answer.status, str) else f"{answer.status // 100}xx"
        counts[key] = counts.get(key, 0) + 1
    seconds = sorted(answer.seconds for answer in answers)
    return {
        "requests": len(answers),
        "by_status": counts,
        "p50_ms": round(1000 * statistics.median(seconds), 1) if seconds else None,
        "p99_ms": round(1000 * seconds[int(0.99 * (len(seconds) - 1))], 1) if seconds else None,
        "max_ms": round(1000 * seconds[-1], 1) if seconds else None,
    }


def bad(answer: Answer) -> bool:
    return isinstance(answer.status, str) or answer.status >= 500


def phases(answers: list[Answer], fault_start: float, fault_end: float) -> dict:
    # Answered before the fault began; in flight at some moment of it; sent after it ended.
    before = [a for a in answers if a.started + a.seconds < fault_start]
    during = [a for a in answers if a.started + a.seconds >= fault_start and a.started < fault_end]
    after = [a for a in answers if a.started >= fault_end]
    failures_after = [a for a in after if bad(a) or a.status != a.expected]
    last_failure = max((a.started + a.seconds for a in failures_after), default=None)
    return {
        "before": tally(before),
        "during": tally(during),
        "after": tally(after),
        "seconds_until_healthy_after_fault": round(last_failure - fault_end, 2) if last_failure else 0.0,
    }


def sign_in(base_url: str, count: int) -> list[str]:
    cookies = []
    for _ in range(count):
        client = load.Client(base_url)
        cookies.append(client.login(DEMO_EMAIL, DEMO_PASSWORD))
        load.check_page(client, ISSUE_PAGE, "WEB-1")
        client.close()
    return cookies


def probe_readyz(base_url: str, stop: threading.Event, answers: list[Answer]) -> None:
    while not stop.is_set():
        client = load.Client(base_url)
        started = time.monotonic()
        try:
            status = client.get("/readyz", encoding="identity").status
        except OSError as exc:
            status = type(exc).__name__
        answers.append(Answer(started, time.monotonic() - started, status))
        client.close()
        stop.wait(0.25)


# --- the deployment --------------------------------------------------------------------------


def deploy(services: Services, database: str, extra_env: dict | None = None) -> tuple[dict, WebProcess]:
    """A migrated database with the demo organization, and a web process serving it."""
    services.create_database(database)
    env = {**services.app_env(database, 0), **JOB_SETTINGS, **(extra_env or {})}
    flask(env, "db", "upgrade")
    flask(env, "seed-demo")
    web = WebProcess(env, threads=8, log_path=services.work / f"web-{database}.log")
    web.start()
    return env, web


class Proxy:
    """nginx with ``deploy/nginx/``'s configuration in front of ``webs`` (rendered locally)."""

    def __init__(self, services: Services, webs: list[WebProcess]):
        from tests.support.nginx import render_nginx

        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise SystemExit("nginx not found: apt-get install nginx")
        self.port = free_port()
        self.directory = services.work / f"nginx-{self.port}"
        self.directory.mkdir()
        conf = render_nginx(self.directory, self.port, [web.port for web in webs])
        command = [binary, "-p", str(self.directory), "-c", str(conf), "-g", "daemon off;"]
        with open(self.directory / "stderr.log", "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 1):
                return
            time.sleep(0.05)
        raise SystemExit(f"nginx did not start:\n{(self.directory / 'stderr.log').read_text()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_processes([self.process])


def behind_proxy(services: Services, database: str) -> tuple[Proxy, list[WebProcess]]:
    """Two web processes (the second on the first's database) behind nginx."""
    env, first = deploy(services, database)
    second = WebProcess(env, threads=8, log_path=services.work / f"web-{database}-2.log")
    second.start()
    return Proxy(services, [first, second]), [first, second]


def under_load(url: str, args, fault, writers: int = 0) -> tuple[Load, float, float]:
    """``args.clients`` signed-in clients (``writers`` of them commenting) load ``url`` for
    ``args.settle`` seconds, while ``fault()`` runs, and ``args.settle`` seconds after: the load
    (its answers, when stopped), and when the fault began and ended."""
    people = Load(url, sign_in(url, args.clients), writers=writers).start()
    try:
        time.sleep(args.settle)
        began = time.monotonic()
        fault()
        ended = time.monotonic()
        time.sleep(args.settle)
    finally:
        people.stop()
    return people, began, ended


def redis_pid(services: Services) -> int:
    return int((services.work / "redis" / "redis.pid").read_text().split()[0])


# --- scenarios -------------------------------------------------------------------------------


@scenario("redis-pause")
def redis_pause(services: Services, args) -> dict:
    _env, web = deploy(services, "redis_pause")
    try:
        people = Load(web.url, sign_in(web.url, args.clients)).start()
        readyz: list[Answer] = []
        stop_probe = threading.Event()
        probe = threading.Thread(target=probe_readyz, args=(web.url, stop_probe, readyz), daemon=True)
        probe.start()
        time.sleep(args.settle)
        pid = redis_pid(services)
        say(f"Redis paused (SIGSTOP) for {args.pause} s")
        paused = time.monotonic()
        os.kill(pid, signal.SIGSTOP)
        time.sleep(args.pause)
        os.kill(pid, signal.SIGCONT)
        resumed = time.monotonic()
        time.sleep(args.settle)
        stop_probe.set()
        probe.join(90)
        answers = people.stop()
    finally:
        web.stop()
    during = [a for a in readyz if paused <= a.started < resumed]
    ready_again = next((a for a in readyz if a.started >= resumed and a.status == 200), None)
    return {
        "clients": args.clients,
        "pause_seconds": args.pause,
        "pages": phases(answers, paused, resumed),
        "readyz_during_pause": tally(during),
        "readyz_ready_seconds_after_resume": round(ready_again.started + ready_again.seconds - resumed, 2)
        if ready_again
        else None,
    }


@scenario("postgres-restart")
def postgres_restart(services: Services, args) -> dict:
    _env, web = deploy(services, "pg_restart")
    pg_ctl = [str(services.pg_bin / "pg_ctl"), "-D", str(services.pgdata), "-m", "fast", "-w"]
    options = services.postgres_options()
    log = ["-l", str(services.work / "pglog" / "pg.log")]
    restart = [*services._run_as, *pg_ctl, *log, "-o", options, "restart"]

    def fault() -> None:
        say("PostgreSQL: pg_ctl restart -m fast")
        subprocess.run(restart, check=True, capture_output=True)

    try:
        people, started, restarted = under_load(web.url, args, fault)
    finally:
        web.stop()
    result = phases(people.answers, started, restarted)
    result["restart_seconds"] = round(restarted - started, 2)
    result["clients"] = args.clients
    return result


@scenario("worker-kill")
def worker_kill(services: Services, args) -> dict:
    services.restart_redis(appendonly=True)
    env, web = deploy(services, "worker_kill")
    web.stop()
    from app import create_app
    from app.config import config_from_env
    from app.core.queue.queues import enqueue
    from app.extensions import redis_connections

    os.environ.update(env)
    app = create_app(config_from_env())
    redis = redis_connections.client(app)
    jobs = args.jobs
    from rq import Retry

    with app.app_context():
        for number in range(jobs):
            # With retries, as the application's jobs have: a killed worker's job runs again.
            enqueue("bench.jobs.stamp_time", "ran", str(number), retry=Retry(max=3))
    scheduler = flask_processes(env, ["scheduler"], services.work)
    workers = flask_processes(env, ["worker", "worker"], services.work)
    kills = 0
    deadline = time.monotonic() + args.job_timeout
    try:
        # Kill the oldest worker each time another ``kill_every`` jobs have run: always in the
        # middle of the stream, however slowly a new worker starts on a busy machine.
        while redis.llen("ran") < jobs // 2 and time.monotonic() < deadline:
            ran = redis.llen("ran")
            while redis.llen("ran") < ran + args.kill_every and time.monotonic() < deadline:
                time.sleep(0.05)
            victim = workers.pop(0)
            victim.kill()
            victim.wait()
            kills += 1
            workers += flask_processes(env, ["worker"], services.work)
        say(f"{kills} workers killed; restarting Redis (append-only file on)")
        stop_processes(workers)
        services.restart_redis(appendonly=True)
        redis.connection_pool.disconnect()
        workers = flask_processes(env, ["worker", "worker"], services.work)
        deadline = time.monotonic() + args.job_timeout
        while time.monotonic() < deadline and len({v.split()[0] for v in redis.lrange("ran", 0, -1)}) < jobs:
            time.sleep(0.5)
    finally:
        stop_processes(workers + scheduler)
    ran = [value.split()[0] for value in redis.lrange("ran", 0, -1)]
    from rq.registry import FailedJobRegistry

    with app.app_context():
        failed = sum(FailedJobRegistry(name, connection=redis).count for name in ("high", "default", "low"))
    return {
        "jobs_failed": failed,
        "jobs": jobs,
        "workers_killed": kills,
        "jobs_ran": len(set(ran)),
        "jobs_lost": jobs - len(set(ran)),
        "jobs_ran_twice": len(ran) - len(set(ran)),
    }


@scenario("replica")
def replica(services: Services, args) -> dict:
    standby = services.start_replica(apply_delay=args.apply_delay)
    env, web = deploy(services, "replica_reads")
    web.stop()
    env["DATABASE_REPLICA_URL"] = services.url("worklane_app", "replica_reads").replace(
        f":{services.pg_port}/", f":{standby}/"
    )
    web = WebProcess(env, threads=8, log_path=services.work / "web-replica.log")
    web.start()
    seen = 0
    try:
        # Another person, signed in first: by the end their own sign-in is long replayed, so
        # they read from the replica and see the last comment only once it is replayed.
        other = load.Client(web.url)
        other.login(DEMO_EMAIL, DEMO_PASSWORD)
        client = load.Client(web.url)
        client.login(DEMO_EMAIL, DEMO_PASSWORD)
        token = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
        for number in range(args.writes):
            answer = client.get(ISSUE_PAGE, encoding="identity")
            found = token.search(answer.body.decode())
            if answer.status != 200 or not found:
                excerpt = answer.body[:300]
                raise SystemExit(f"the issue page answered {answer.status} without a form: {excerpt!r}")
            body = urlencode({"csrf_token": found.group(1), "body": f"Replica check {number}."})
            form = {"Content-Type": "application/x-www-form-urlencoded"}
            posted = client.request("POST", f"{ISSUE_PAGE}/comments", body=body, headers=form)
            if posted.status != 303:
                raise SystemExit(f"the comment was refused: {posted.status}")
            shown = client.get(ISSUE_PAGE, encoding="identity").body.decode()
            seen += f"Replica check {number}." in shown
        marker = f"Replica check {args.writes - 1}."
        reader = load.Client(web.url)  # a new connection: the other one has been idle for minutes
        reader.cookie = other.cookie
        stale_for_others = marker not in reader.get(ISSUE_PAGE, encoding="identity").body.decode()
    finally:
        web.stop()
    return {
        "apply_delay": args.apply_delay,
        "writes": args.writes,
        "reads_that_saw_the_write": seen,
        "another_person_saw_it_late": stale_for_others,
    }


@scenario("idle-connections")
def idle_connections(services: Services, args) -> dict:
    proxy, webs = behind_proxy(services, "idle")
    idle: list[socket.socket] = []
    try:
        cookie = sign_in(proxy.url, 1)[0]
        for _ in range(args.idle):
            idle.append(socket.create_connection(("127.0.0.1", proxy.port), timeout=10))
        say(f"{len(idle)} idle connections open to nginx")
        timed = {}
        for name, path, with_cookie in (("healthz", "/healthz", False), ("warm_page", ISSUE_PAGE, True)):
            answers = []
            for _ in range(10):
                client = load.Client(proxy.url)
                client.cookie = cookie if with_cookie else None
                started = time.monotonic()
                status = client.get(path).status
                answers.append(Answer(started, time.monotonic() - started, status))
                client.close()
            timed[name] = tally(answers)
        still_open = sum(1 for sock in idle if _open(sock))
    finally:
        for sock in idle:
            sock.close()
        proxy.stop()
        for web in webs:
            web.stop()
    return {"idle_connections": args.idle, "still_open_after": still_open, **timed}


def _open(sock: socket.socket) -> bool:
    """The idle connection was not closed by the other side."""
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


@scenario("rolling-restart")
def rolling_restart(services: Services, args) -> dict:
    proxy, webs = behind_proxy(services, "rolling")

    def fault() -> None:
        for web in webs:
            say(f"restarting the web process on port {web.port}")
            web.stop()  # SIGTERM: it stops accepting and drains
            web.start()  # on the same port, ready when /readyz answers 200

    try:
        people, began, ended = under_load(proxy.url, args, fault)
    finally:
        proxy.stop()
        for web in webs:
            web.stop()
    result = phases(people.answers, began, ended)
    result["restart_seconds"] = round(ended - began, 1)
    result["clients"] = args.clients
    return result


# --- a deploy with a migration ----------------------------------------------------------------


class ReleaseUnavailable(Exception):
    """The previous release cannot be checked out from this repository (a shallow clone, a
    migration not committed yet, …)."""


def git(*args: str) -> str:
    result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise ReleaseUnavailable(f"git {' '.join(args)}: {result.stderr.strip() or result.returncode}")
    return result.stdout.strip()


def migration_head(root: Path):
    """The head revision of the migrations of the checkout at ``root`` (alembic's Script)."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory(str(root / "migrations")).get_revisions("heads")
    if len(heads) != 1:
        raise ReleaseUnavailable(f"{len(heads)} migration heads in {root.name}/migrations")
    return heads[0]


@dataclass
class Release:
    """The deploy that adds the newest migration: this checkout, and the release before it, the
    parent of the commit that added that migration, checked out in a detached git worktree."""

    migration: str  # the migration's file, relative to the checkout
    revision: str
    down_revision: str
    added_in: str  # the commit that added the migration
    previous: str  # its parent: the previous release
    code: str  # the commit of this checkout, "+ changes" when its files differ from it
    worktree: Path | None = None

    @classmethod
    def newest(cls) -> Release:
        head = migration_head(ROOT)
        migration = Path(head.path).resolve().relative_to(ROOT).as_posix()
        added_in = git("log", "--diff-filter=A", "--format=%H", "-1", "--", migration)
        if not added_in:
            raise ReleaseUnavailable(f"{migration} is not committed: no release added it")
        try:
            previous = git("rev-parse", "--verify", "--quiet", f"{added_in}^")
        except ReleaseUnavailable:
            # In a shallow clone the oldest commit there seems to add every file, and has no parent.
            shallow = git("rev-parse", "--is-shallow-repository") == "true"
            where = "this shallow clone (git fetch --unshallow)" if shallow else "this repository"
            raise ReleaseUnavailable(
                f"{migration} was added in {added_in[:12]}, whose parent is not in {where}"
            ) from None
        changed = git("status", "--porcelain", "--untracked-files=no")
        code = git("rev-parse", "HEAD") + (" + changes" if changed else "")
        down = head.down_revision
        if not isinstance(down, str):
            raise ReleaseUnavailable(f"migration {head.revision} has {down!r} as its down revision")
        return cls(migration, head.revision, down, added_in, previous, code)

    def check_out(self, directory: Path) -> Path:
        """The previous release in a detached worktree at ``directory``; its migration head must
        be the new migration's down revision."""
        git("worktree", "add", "--detach", str(directory), self.previous)
        self.worktree = directory
        previous_head = migration_head(directory).revision
        if previous_head != self.down_revision:
            raise ReleaseUnavailable(
                f"the migration head of {self.previous[:12]} is {previous_head}, not {self.down_revision}"
            )
        return directory

    def remove(self) -> None:
        if self.worktree is not None:
            try:
                git("worktree", "remove", "--force", str(self.worktree))
            except ReleaseUnavailable as exc:
                say(f"the previous release's worktree is left behind: {exc}")
            self.worktree = None


class ReleasedWeb(WebProcess):
    """A web process of one release, ready once it answers ``/healthz``, as ``deploy/rolling-restart``
    waits for it (the previous code's ``/readyz`` answers 503 once the schema is ahead of it)."""

    ready_path = "/healthz"


def readyz_status(url: str) -> int | str:
    client = load.Client(url)
    try:
        return client.get("/readyz", encoding="identity").status
    except (OSError, HTTPException) as exc:
        return type(exc).__name__
    finally:
        client.close()


@scenario("deploy-with-migration")
def deploy_with_migration(services: Services, args) -> dict:
    try:
        release = Release.newest()
    except ReleaseUnavailable as exc:
        return {"not_run": str(exc)}
    database = "deploy"
    env = {**services.app_env(database, 0), **JOB_SETTINGS, "PYTHONPATH": str(ROOT)}
    previous_webs: list[WebProcess] = []
    current_webs: list[WebProcess] = []
    proxy = None
    seen: dict = {"restarts": []}

    def release_step_and_restart() -> None:
        say(f"release step: flask --app wsgi db upgrade ({release.down_revision} to {release.revision})")
        started = time.monotonic()
        flask(env, "db", "upgrade")
        seen["migration"] = (started, time.monotonic())
        seen["previous_code_readyz_after_migration"] = [readyz_status(web.url) for web in previous_webs]
        for number, web in enumerate(previous_webs, start=1):
            say(f"restarting the web process on port {web.port} into the new code")
            began = time.monotonic()
            web.stop()  # SIGTERM: it stops accepting and drains
            log = services.work / f"web-{number}-current.log"
            current_webs.append(ReleasedWeb(env, threads=8, log_path=log, port=web.port))
            current_webs[-1].start()
            seen["restarts"].append(
                {
                    "port": web.port,
                    "seconds": round(time.monotonic() - began, 1),
                    "exit": web.process.returncode,
                }
            )

    try:
        previous = release.check_out(services.work / "previous-release")
        say(f"previous release {release.previous[:12]} (migrations up to {release.down_revision})")
        previous_env = {**env, "PYTHONPATH": str(previous)}
        services.create_database(database)
        flask(previous_env, "db", "upgrade", root=previous)
        schema_before = services.psql("SELECT version_num FROM alembic_version", database)
        flask(previous_env, "seed-demo", root=previous)
        for number in (1, 2):
            log = services.work / f"web-{number}-previous.log"
            previous_webs.append(ReleasedWeb(previous_env, threads=8, log_path=log, root=previous))
            previous_webs[-1].start()
        proxy = Proxy(services, previous_webs)
        people, began, ended = under_load(proxy.url, args, release_step_and_restart, writers=args.writers)
        schema_after = services.psql("SELECT version_num FROM alembic_version", database)
        readyz_after = [readyz_status(web.url) for web in current_webs]
        stored = services.psql("SELECT body FROM comments WHERE body LIKE 'Deploy check %'", database)
    except ReleaseUnavailable as exc:
        return {"not_run": str(exc), **release_figures(release)}
    finally:
        if proxy is not None:
            proxy.stop()
        for web in previous_webs + current_webs:
            web.stop()
        release.remove()
    migrated, migrated_by = seen["migration"]
    in_migration = [
        a for a in people.answers if a.started + a.seconds >= migrated and a.started < migrated_by
    ]
    lost = set(people.comments) - set(stored.splitlines())
    return {
        **release_figures(release),
        "schema_before": schema_before,
        "schema_after": schema_after,
        "migration_seconds": round(migrated_by - migrated, 2),
        "previous_code_readyz_after_migration": seen["previous_code_readyz_after_migration"],
        "current_code_readyz_after_restart": readyz_after,
        "restarts": seen["restarts"],
        "deploy_seconds": round(ended - began, 1),
        "clients": args.clients,
        "writers": args.writers,
        "failed_requests": sum(1 for a in people.answers if a.status != a.expected),
        **phases(people.answers, began, ended),
        "during_migration": tally(in_migration),
        "comments_answered_303": len(people.comments),
        "comments_answered_303_not_stored": len(lost),
    }


def release_figures(release: Release) -> dict:
    return {
        "migration": release.migration,
        "from_revision": release.down_revision,
        "to_revision": release.revision,
        "previous_release": release.previous,
        "migration_added_in": release.added_in,
        "code": release.code,
    }


# --- running -----------------------------------------------------------------------------------


def machine() -> dict:
    return {"nproc": os.cpu_count(), "load_before": os.getloadavg(), "python": sys.version.split()[0]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", help=f"some of: {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and stop")
    parser.add_argument("--clients", type=int, default=16, help="signed-in clients loading pages (16)")
    parser.add_argument("--pause", type=float, default=20, help="seconds Redis is paused (20)")
    parser.add_argument("--settle", type=float, default=5, help="seconds of load before and after (5)")
    parser.add_argument("--jobs", type=int, default=2000, help="jobs in worker-kill (2,000)")
    parser.add_argument("--kill-every", type=int, default=50, help="jobs run between two kills (50)")
    parser.add_argument("--job-timeout", type=float, default=600, help="seconds to wait for them (600)")
    parser.add_argument(
        "--writers", type=int, default=2, help="of the clients, those commenting in deploy-with-migration (2)"
    )
    parser.add_argument("--idle", type=int, default=1000, help="idle connections to nginx (1,000)")
    parser.add_argument("--writes", type=int, default=1000, help="write-then-read rounds in replica (1,000)")
    parser.add_argument("--apply-delay", default="2s", help="the replica's recovery_min_apply_delay (2s)")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(SCENARIOS))
        return 0
    chosen = args.scenarios or list(SCENARIOS)
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")

    def measure(services: Services, results: dict) -> None:
        results["machine"] = machine()
        for name in chosen:
            say(f"scenario {name}")
            try:
                results[name] = SCENARIOS[name](services, args)
            except Exception as exc:  # one scenario's failure is reported; the others still run
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            say(json.dumps(results[name]))
        results["machine"]["load_after"] = os.getloadavg()

    settings = {key: value for key, value in vars(args).items() if key != "list"}
    return run_benchmark("faults", {"settings": settings}, measure)


if __name__ == "__main__":
    sys.exit(main())
