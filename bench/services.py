"""Throw-away PostgreSQL and Redis on free local ports, and the web process under test.

Everything lives in one temporary directory that ``Services.stop()`` removes. As root the
PostgreSQL cluster runs as the ``postgres`` user (PostgreSQL refuses to run as root), as in
``scripts/test.sh``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results"

OWNER_ROLE = "worklane_owner"
APP_ROLE = "worklane_app"

# As tests/conftest.py: the owner owns the schema; the app role owns nothing, cannot bypass
# row-level security, and gets the table privileges through the owner's default privileges.
POSTGRES_ROLES = f"""
CREATE ROLE {OWNER_ROLE} LOGIN;
CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS;
"""
POSTGRES_SCHEMA = f"""
DROP SCHEMA public CASCADE;
CREATE SCHEMA public AUTHORIZATION {OWNER_ROLE};
GRANT USAGE ON SCHEMA public TO {APP_ROLE};
ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER_ROLE} IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE};
"""

# Throw-away cluster: durability off (as in make test); a little more memory than the
# packaged default so the measured organization's rows stay in shared buffers.
POSTGRES_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
    "-c max_connections=100 -c shared_buffers=256MB -c maintenance_work_mem=256MB"
)


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def is_root() -> bool:
    return os.geteuid() == 0


def pg_bindir() -> Path:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise SystemExit("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")


def _version_key(path: str) -> float:
    try:
        return float(Path(path).parent.name)
    except ValueError:
        return 0.0


def redis_server() -> str:
    found = shutil.which("redis-server") or str(VENV_BIN / "redis-server")
    if not Path(found).exists():
        raise SystemExit("redis-server not found: apt-get install redis-server")
    return found


@dataclass
class Services:
    """PostgreSQL and Redis in a temporary directory; ``stop()`` always tears both down."""

    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="worklane-bench.")))
    pg_port: int = 0
    redis_port: int = 0
    pg_bin: Path | None = None
    versions: dict = field(default_factory=dict)
    _run_as: list[str] = field(default_factory=list)

    @property
    def pgdata(self) -> Path:
        return self.work / "pg"

    def start(self) -> None:
        self.work.chmod(0o755)
        self.pg_bin = pg_bindir()
        for name in ("pg", "pgsock", "pglog", "redis"):
            (self.work / name).mkdir()
        if is_root():
            if subprocess.run(["id", "postgres"], capture_output=True).returncode != 0:
                home = ["--home-dir", str(self.work), "--shell", "/usr/sbin/nologin"]
                subprocess.run(["useradd", "--system", *home, "postgres"], check=True)
            for name in ("pg", "pgsock", "pglog"):
                shutil.chown(self.work / name, "postgres")
            self._run_as = ["runuser", "-u", "postgres", "--"]
        self._start_postgres()
        self._start_redis()

    def _start_postgres(self) -> None:
        self.pg_port = free_port()
        version = subprocess.run(
            [str(self.pg_bin / "postgres"), "--version"], capture_output=True, text=True, check=True
        ).stdout.split()[2]
        self.versions["postgresql"] = version
        say(f"PostgreSQL {version} on 127.0.0.1:{self.pg_port}")
        initdb = [str(self.pg_bin / "initdb"), "-D", str(self.pgdata), "-U", "postgres", "--auth=trust"]
        _run([*self._run_as, *initdb, "-E", "UTF8", "--locale=C.UTF-8"], self.work / "initdb.log")
        options = self.postgres_options()
        pg_ctl = [str(self.pg_bin / "pg_ctl"), "-D", str(self.pgdata), "-l", str(self.work / "pglog/pg.log")]
        _run([*self._run_as, *pg_ctl, "-w", "-t", "60", "-o", options, "start"], self.work / "pg_ctl.log")
        self.psql(POSTGRES_ROLES, database="postgres")

    def migrated_app(self, database: str, redis_db: int = 0):
        """A new database at the migration head, and the app built for it in this process.

        Returns ``(app, env)``; ``env`` (also put in ``os.environ``) is what worker processes
        started by a benchmark need to reach the same database and Redis.
        """
        self.create_database(database)
        env = {**self.app_env(database, redis_db), "LOG_LEVEL": "WARNING"}
        flask(env, "db", "upgrade")
        os.environ.update(env)
        from app import create_app
        from app.config import config_from_env

        return create_app(config_from_env()), env

    def create_database(self, name: str) -> None:
        """An empty database whose public schema the owner role owns (as in the tests)."""
        self.psql(f"CREATE DATABASE {name}", database="postgres")
        self.psql(POSTGRES_SCHEMA, database=name)

    def _start_redis(self, appendonly: bool = False) -> None:
        self.redis_port = self.redis_port or free_port()
        binary = redis_server()
        self.versions["redis"] = (
            subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
            .stdout.split()[2]
            .removeprefix("v=")
        )
        say(f"Redis {self.versions['redis']} on 127.0.0.1:{self.redis_port}")
        redis_dir = self.work / "redis"
        listen = ["--bind", "127.0.0.1", "--port", str(self.redis_port), "--dir", str(redis_dir)]
        # Ephemeral unless asked for the append-only file production's queue Redis runs with.
        persistence = ["--appendonly", "yes", "--appendfsync", "everysec"] if appendonly else []
        persistence = persistence or ["--appendonly", "no"]
        policy = ["--save", "", *persistence, "--maxmemory-policy", "noeviction"]
        files = ["--pidfile", str(redis_dir / "redis.pid"), "--logfile", str(redis_dir / "redis.log")]
        subprocess.run([binary, *listen, *policy, "--daemonize", "yes", *files], check=True)
        import redis

        client = redis.Redis(port=self.redis_port)
        for _ in range(100):
            try:
                client.ping()
                return
            except (redis.ConnectionError, redis.BusyLoadingError):
                time.sleep(0.05)
        raise SystemExit("Redis did not start")

    def restart_redis(self, appendonly: bool = False) -> None:
        """Stop Redis the way a restart does (SIGTERM: it writes its files) and start it again
        on the same port and directory."""
        self._stop_redis()
        self._start_redis(appendonly=appendonly)

    def _stop_redis(self) -> None:
        pidfile = self.work / "redis" / "redis.pid"
        if pidfile.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
            for _ in range(100):
                if not pidfile.exists():
                    break
                time.sleep(0.1)

    def postgres_options(self, port: int | None = None, socket_dir: Path | None = None) -> str:
        """The server options of the bench's clusters (``pg_ctl -o``)."""
        return f"-p {port or self.pg_port} -k {socket_dir or self.work / 'pgsock'} {POSTGRES_OPTIONS}"

    def start_replica(self, apply_delay: str = "0") -> int:
        """A hot standby of the cluster, made by ``pg_basebackup -R`` and applying changes
        ``apply_delay`` late; its port. ``stop()`` removes it too."""
        port = free_port()
        data, sock = self.work / "replica", self.work / "replica-sock"
        for path in (data, sock):
            path.mkdir(mode=0o700)
            if is_root():
                shutil.chown(path, "postgres")
        basebackup = [str(self.pg_bin / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.pg_port)]
        copy = ["-U", "postgres", "-D", str(data), "-R", "-X", "stream", "-c", "fast"]
        _run([*self._run_as, *basebackup, *copy], self.work / "basebackup.log")
        options = f"{self.postgres_options(port, sock)} -c recovery_min_apply_delay={apply_delay}"
        pg_ctl = [str(self.pg_bin / "pg_ctl"), "-D", str(data), "-l", str(self.work / "pglog/replica.log")]
        _run([*self._run_as, *pg_ctl, "-w", "-t", "60", "-o", options, "start"], self.work / "pg_ctl.log")
        say(f"replica on 127.0.0.1:{port}, applying changes {apply_delay} late")
        return port

    def psql(self, sql: str, database: str) -> str:
        server = ["-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres", "-d", database]
        quiet = ["-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        command = [str(self.pg_bin / "psql"), *server, *quiet, "-c", sql]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def url(self, user: str, database: str) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.pg_port}/{database}"

    def redis_url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/{db}"

    def app_env(self, database: str, redis_db: int) -> dict[str, str]:
        """The environment of every process of one system under test (its database, its Redis db)."""
        instance = self.work / f"instance-{database}"
        instance.mkdir(exist_ok=True)
        return {
            "WORKLANE_ENV": "testing",
            "DATABASE_URL": self.url(APP_ROLE, database),
            "DATABASE_MIGRATION_URL": self.url(OWNER_ROLE, database),
            "REDIS_URL": self.redis_url(redis_db),
            "SECRET_KEY": "bench-secret-key-not-for-production-0123456789abcdef",
            "SMTP_URL": "smtp://127.0.0.1:1",
            "WORKLANE_INSTANCE_PATH": str(instance),
            # Production's level: every request writes its JSON access line, as in production.
            "LOG_LEVEL": "INFO",
            "LOG_JSON": "true",
        }

    def pids(self) -> list[int]:
        """The postmaster's and Redis's process ids (the benchmark's own, long-lived processes)."""
        found = []
        for path in (self.pgdata / "postmaster.pid", self.work / "redis" / "redis.pid"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                found.append(int(path.read_text().split()[0]))
        return found

    def stop(self) -> None:
        for data in (self.work / "replica", self.pgdata):
            if (data / "postmaster.pid").exists():
                pg_ctl = [str(self.pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
                subprocess.run([*self._run_as, *pg_ctl], capture_output=True)
        self._stop_redis()
        shutil.rmtree(self.work, ignore_errors=True)


def _run(command: list[str], log: Path) -> None:
    with open(log, "wb") as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise SystemExit(f"{command[0]} failed:\n{log.read_text()}")


def flask(env: dict[str, str], *args: str, root: Path = ROOT) -> str:
    """``flask --app wsgi …`` as its own process, the way the Procfile runs it (the app of the
    checkout at ``root``)."""
    result = subprocess.run(
        [str(VENV_BIN / "flask"), "--app", "wsgi", *args],
        cwd=root,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"flask {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


class WebProcess:
    """The Procfile's ``web`` process: ``flask --app wsgi web`` (waitress, stopped gracefully) with
    WEB_THREADS threads, running the app of the checkout at ``root`` on ``port`` (a free one)."""

    def __init__(
        self, env: dict[str, str], threads: int, log_path: Path, root: Path = ROOT, port: int | None = None
    ):
        self.env = env
        self.threads = threads
        self.log_path = log_path
        self.root = root
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    #: What the process runs, the path that answers 200 once it is ready, and what to call it.
    what, ready_path = "the web process", "/readyz"

    def command(self) -> list[str]:
        return [
            *(str(VENV_BIN / "flask"), "--app", "wsgi", "web"),
            *("--host=127.0.0.1", f"--port={self.port}", f"--threads={self.threads}"),
        ]

    def start(self) -> None:
        env = {**os.environ, **self.env, "WEB_THREADS": str(self.threads), "PORT": str(self.port)}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command(), cwd=self.root, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.what} exited at start:\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"{self.what} was not ready within 30 s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # graceful: it drains its connections first
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class HelloProcess(WebProcess):
    """``bench/hello.py`` served by waitress with the web process's settings (threads, connection
    limit, channel timeout): the floor a WSGI request costs on this machine."""

    what, ready_path = "the hello world", "/"

    def command(self) -> list[str]:
        return [
            str(VENV_BIN / "waitress-serve"),
            *(f"--listen=127.0.0.1:{self.port}", f"--threads={self.threads}"),
            *("--connection-limit=100", "--channel-timeout=120", "bench.hello:app"),
        ]


def flask_processes(env: dict, names: list[str], log_dir: Path) -> list[subprocess.Popen]:
    """``flask --app wsgi <name>`` for each name (worker, scheduler …), as the Procfile runs them,
    logging to ``<log_dir>/<name>.log``."""
    started = []
    for name in names:
        with open(log_dir / f"{name}.log", "ab") as log:
            started.append(
                subprocess.Popen(
                    [str(VENV_BIN / "flask"), "--app", "wsgi", name],
                    cwd=ROOT,
                    env={**os.environ, **env},
                    stdout=log,
                    stderr=log,
                )
            )
    return started


def stop_processes(processes: list[subprocess.Popen]) -> None:
    """Ask each process to stop (SIGTERM), then wait for it; kill one that takes over 30 s."""
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def write_results(name: str, results: dict) -> Path:
    """Write a benchmark's results as ``bench/results/<name>.json``; the path."""
    import json

    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return path


def run_benchmark(name: str, results: dict, measure: Callable[[Services, dict], None]) -> int:
    """Run one benchmark: start PostgreSQL and Redis, ``measure(services, results)``, stop them
    (a stop signal unwinds through here too), and write ``results`` as
    ``bench/results/<name>-<timestamp>.json``."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    services = Services()
    results = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"), **results}
    try:
        services.start()
        measure(services, results)
    finally:
        services.stop()
    path = write_results(f"{name}-{stamp}", results)
    print(f"results: {path.relative_to(ROOT)}")
    return 0
