"""Test fixtures: a real database (PostgreSQL or SQLite) and a real Redis.

`make test` starts the servers and sets TEST_POSTGRES_URL, TEST_REDIS_URL and
WORKLANE_TEST_DATABASE (postgres or sqlite), and TEST_POSTGRES_POOLER_URL when
PgBouncer (transaction mode) stands in front of PostgreSQL: the app's connections
then go through it, as in production. The schema is built once per session by
the real migrations, connected directly; each test runs inside a transaction
that is rolled back, unless it asks for ``committed_db`` (work other processes see).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import uuid
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import psutil
import pytest
from cryptography.fernet import Fernet
from flask_migrate import upgrade
from redis import Redis
from sqlalchemy import create_engine, make_url, orm

from app import create_app
from app.config import (
    PROJECT_ROOT,
    BaseConfig,
    DevelopmentConfig,
    TestingConfig,
    config_from_env,
    normalize_database_url,
)
from app.core.tenancy import unscoped
from app.extensions import cache, db, limiter, redis_connections
from tests.support.workers import RUN_MARKER, poll, stop_process, worklane_processes

pytest_plugins = ["tests.accounts", "tests.sqlcapture", "tests.support.oidc_fixtures"]

DATABASE_KIND = os.environ.get("WORKLANE_TEST_DATABASE", "postgres")
#: The test database through PgBouncer in transaction mode (unset: no pooler in front).
POOLER_URL = os.environ.get("TEST_POSTGRES_POOLER_URL") if DATABASE_KIND == "postgres" else None


def pytest_configure(config):
    sys.addaudithook(_processes_need_the_marker)
    os.environ.setdefault(RUN_MARKER, uuid.uuid4().hex)
    if not os.environ.get("TEST_REDIS_URL") or (
        DATABASE_KIND == "postgres" and not os.environ.get("TEST_POSTGRES_URL")
    ):
        pytest.exit(
            "the tests need real PostgreSQL and Redis servers: run them with `make test` "
            '(one test: make test ARGS="tests/test_health.py -k readyz")',
            returncode=2,
        )


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "postgres_only" in item.keywords and DATABASE_KIND != "postgres":
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL"))


_running_test: list[pytest.Item | None] = [None]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _running_test[0] = item
    try:
        return (yield)
    finally:
        _running_test[0] = None


def _processes_need_the_marker(event: str, args: tuple) -> None:
    """Fail a test (or its fixture) that starts a process without the ``processes`` marker.

    Every process started from the test process is seen here (``subprocess`` raises the audit
    event before it starts one), so ``-m "not processes"`` really runs no process. The browser
    tests' Playwright driver (which starts Chromium) belongs to the ``browser`` marker.
    """
    if event != "subprocess.Popen":
        return
    item = _running_test[0]
    if item is None or item.get_closest_marker("processes") is not None:
        return
    executable, argv = args[0], args[1]
    program = str(executable or (argv if isinstance(argv, str | bytes) else argv[0]))
    if item.get_closest_marker("browser") is not None and "playwright" in Path(program).parts:
        return
    raise pytest.fail.Exception(
        f"{item.nodeid} starts a process ({program}) without @pytest.mark.processes", pytrace=False
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


APP_ROLE = "worklane_app"
OWNER_ROLE = "worklane_owner"

POSTGRES_SETUP = f"""
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{OWNER_ROLE}') THEN
    CREATE ROLE {OWNER_ROLE} LOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
    CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;
END $$;
DROP SCHEMA public CASCADE;
CREATE SCHEMA public AUTHORIZATION {OWNER_ROLE};
GRANT USAGE ON SCHEMA public TO {APP_ROLE};
ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER_ROLE} IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE};
"""


def _with_user(url: str, user: str) -> str:
    return make_url(url).set(username=user, password=None).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_urls(tmp_path_factory) -> tuple[str, str | None]:
    """(app URL, migration URL) of the session's empty test database.

    On PostgreSQL the app connects as a role that owns nothing and cannot bypass
    row-level security, through PgBouncer when there is one; the migrations run as the
    owner, directly, as in production.
    """
    if DATABASE_KIND == "sqlite":
        return "sqlite:///" + str(tmp_path_factory.mktemp("sqlite") / "worklane_test.db"), None
    admin_url = normalize_database_url(os.environ["TEST_POSTGRES_URL"])
    engine = create_engine(admin_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(POSTGRES_SETUP)
    engine.dispose()
    app_url = normalize_database_url(POOLER_URL) if POOLER_URL else admin_url
    return _with_user(app_url, APP_ROLE), _with_user(admin_url, OWNER_ROLE)


@pytest.fixture(scope="session")
def database_url(database_urls) -> str:
    return database_urls[0]


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ["TEST_REDIS_URL"]


@pytest.fixture(scope="session")
def test_env(database_urls, redis_url, tmp_path_factory) -> dict[str, str]:
    """The environment a process of the system under test gets (workers, honcho)."""
    app_url, migration_url = database_urls
    return {
        "WORKLANE_ENV": "testing",
        "DATABASE_URL": app_url,
        "DATABASE_MIGRATION_URL": migration_url or "",
        "DATABASE_POOLER": "transaction" if POOLER_URL else "",
        "REDIS_URL": redis_url,
        "WORKLANE_INSTANCE_PATH": str(tmp_path_factory.mktemp("instance")),
    }


@pytest.fixture
def make_app(test_env):
    """Build extra apps (other URLs, broken dependencies); their engines are closed afterwards.

    An app given another DATABASE_URL migrates that database, not the session's.
    """
    made = []
    # Flask-Limiter keeps one storage per process, and Flask-Caching answers outside an app
    # context with the last app it was given: an extra app (say with an unreachable Redis)
    # would otherwise leave every later test counting against it, or moving its cache versions.
    limiter_storage = limiter._storage, limiter._limiter
    cache_default_app = cache.app

    def _make(env: dict[str, str], config_class: type[BaseConfig] = TestingConfig):
        env = dict(env)
        if env.get("DATABASE_URL") != test_env["DATABASE_URL"] and env.get(
            "DATABASE_MIGRATION_URL"
        ) == test_env.get("DATABASE_MIGRATION_URL"):
            env["DATABASE_MIGRATION_URL"] = ""
        made.append(create_app(config_class.from_env(env)))
        return made[-1]

    yield _make
    limiter._storage, limiter._limiter = limiter_storage
    cache.app = cache_default_app
    for extra in made:
        with extra.app_context():
            for engine in db.engines.values():
                engine.dispose()
        client = extra.extensions[redis_connections.extension_name]["client"]
        if client is not None:
            client.close()


@pytest.fixture
def make_dev_app(make_app, test_env, tmp_path):
    """Build a development app (the only kind with /dev/mail) whose /dev/mail reads ``mail_dir``."""

    def _make(mail_dir: Path, **env: str):
        development = {
            **test_env,
            "WORKLANE_ENV": "development",
            "SECRET_KEY": "d" * 48,
            "WORKLANE_INSTANCE_PATH": str(tmp_path / "instance"),
            "DEV_MAIL_DIR": str(mail_dir),
            "LOG_LEVEL": "WARNING",
        }
        return make_app({**development, **env}, config_class=DevelopmentConfig)

    return _make


#: Production refuses to start without ENCRYPTION_KEYS: a key made for this run of the tests.
PRODUCTION_ENCRYPTION_KEY = Fernet.generate_key().decode()


def production_app(env: dict[str, str], **extra: str):
    """A production app for pages that need no database: secrets, mail and PUBLIC_URL set
    (https://worklane.example), the database unreachable; ``extra`` overrides the environment."""
    production = {
        **env,
        "WORKLANE_ENV": "production",
        "SECRET_KEY": "s" * 48,
        "AUDIT_SIGNING_KEY": "a" * 48,
        "SMTP_URL": "smtp://127.0.0.1:2525",
        "PUBLIC_URL": "https://worklane.example",
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/unused",
        "ENCRYPTION_KEYS": PRODUCTION_ENCRYPTION_KEY,
    }
    return create_app(config_from_env({**production, **extra}, dotenv_path=None))


def make_config(env: dict[str, str], **overrides) -> TestingConfig:
    config = TestingConfig.from_env(env)
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


@pytest.fixture(scope="session")
def app(test_env):
    """The app, with the schema built by the migrations once per session."""
    app = create_app(make_config(test_env))
    with app.app_context():
        upgrade(directory=str(PROJECT_ROOT / "migrations"))
    yield app
    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test(request):
    """Fail a test whose web, worker or scheduler processes are still running after its teardown.

    A worker left behind (say, orphaned by a supervisord that had to be killed) keeps taking
    the jobs of the tests after it, unseen once their Redis is flushed: it is killed here, and
    the test that left it fails with what it was, instead of tests further on failing at random.
    """
    if request.node.get_closest_marker("processes") is None:
        yield
        return
    before = set(psutil.pids())
    yield
    started = [process for process in worklane_processes() if process.pid not in before]
    _, left = psutil.wait_procs(started, timeout=10)  # a stop already under way may finish
    if left:
        described = []
        for process in left:
            try:
                described.append(f"{process.pid} {' '.join(process.cmdline())}")
                process.kill()
            except psutil.NoSuchProcess:
                continue
        psutil.wait_procs(left, timeout=10)
        if described:
            pytest.fail("left running after the test (now killed): " + "; ".join(described), pytrace=False)


@pytest.fixture(autouse=True)
def _clean_redis(redis_url):
    from app.flags.state import forget

    Redis.from_url(redis_url).flushdb()
    forget()  # the flags' version starts again at 0: a memo of an earlier test would match it
    yield


@pytest.fixture
def redis_client(app) -> Redis:
    return redis_connections.client(app)


@pytest.fixture
def db_session(app):
    """Each test's database work happens in one transaction, rolled back at the end.

    Code under test may commit: commits become savepoints of that transaction.
    As in production, every request ends its session (uncommitted work is
    dropped, the next request starts fresh); no app context stays pushed, so
    requests never share ``g``.
    """
    with app.app_context():
        connection = db.engine.connect()
    transaction = connection.begin()
    original = db.session
    # A plain Session bound to the connection: Flask-SQLAlchemy's own Session
    # would pick the engine again and commit for real.
    db.session = orm.scoped_session(
        orm.sessionmaker(bind=connection, join_transaction_mode="create_savepoint", query_cls=db.Query),
        scopefunc=lambda: "test",
    )
    try:
        yield db.session
    finally:
        db.session.remove()
        db.session = original
        transaction.rollback()
        connection.close()


@pytest.fixture
def committed_db(app):
    """Real commits, for work another process must see; tables are emptied afterwards."""
    yield
    with app.app_context(), unscoped("test cleanup"):
        db.session.remove()
        with db.engine.begin() as connection:
            for table in reversed(db.metadata.sorted_tables):
                connection.execute(table.delete())


@pytest.fixture
def client(app, db_session):
    return app.test_client()


CSRF_TOKEN = re.compile(r'name="(?:[\w-]+-)?csrf_token" type="hidden" value="([^"]+)"')


def csrf_token_from(html: str) -> str:
    match = CSRF_TOKEN.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def run_flask(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``flask --app wsgi …`` as its own process, the way the Procfile does."""
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class LiveServer:
    """The app served by waitress on a free port, in a thread of the test process."""

    def __init__(self, app, threads: int = 4):
        from waitress.server import create_server

        self.port = free_port()
        self.server = create_server(app, host="127.0.0.1", port=self.port, threads=threads)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        # waitress's own loop, in short turns so that it can be told to stop without the
        # trigger pipe; every socket is closed here, on the loop's thread (closing them from
        # another thread races its select() into "Bad file descriptor").
        from waitress import wasyncore

        try:
            while not self.stopping.is_set():
                wasyncore.loop(timeout=0.05, map=self.server._map, count=1)
        finally:
            wasyncore.close_all(self.server._map)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        # Requests still being answered finish first; then the loop closes the listening socket
        # and the browsers' keep-alive connections, so the thread ends at once.
        self.server.task_dispatcher.shutdown(timeout=5)
        self.stopping.set()
        self.thread.join(5)


@pytest.fixture
def live_server(app, committed_db):
    with LiveServer(app) as server:
        yield server


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = os.environ.get("WORKLANE_CHROMIUM", "")
    if not path or not Path(path).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("WORKLANE_CHROMIUM must point at Chromium in CI")
        pytest.skip("no Chromium (set WORKLANE_CHROMIUM or install chromium)")
    return path


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def page(chromium_path):
    """A page in a fresh Chromium context; its console and page errors collect in ``page.problems``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context()
        page = context.new_page()
        page.problems = []
        page.on("console", lambda msg: msg.type == "error" and page.problems.append(msg.text))
        page.on("pageerror", lambda exc: page.problems.append(str(exc)))
        try:
            yield page
        finally:
            context.close()
            browser.close()


@pytest.fixture(scope="session")
def migrated_env(app, test_env) -> dict[str, str]:
    """``test_env`` once the session's database is at the migration head."""
    return test_env


class SmtpSink:
    """The development mail sink (``python -m app.devmail.sink``) as a process on a free port."""

    def __init__(self, maildir: Path, log_path: Path):
        self.maildir = maildir
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [sys.executable, "-m", "app.devmail.sink", "--port", str(self.port)]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [*command, "--maildir", str(self.maildir)], cwd=PROJECT_ROOT, stdout=log, stderr=log
            )
        if not poll(self._answers, 15):
            self.stop()
            pytest.fail("the mail sink did not answer within 15s:\n" + self.output())

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail("the mail sink exited at start:\n" + self.output())
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                return conn.recv(64).startswith(b"220")
        except OSError:
            return False

    def messages(self) -> list[EmailMessage]:
        """Every stored message, oldest first."""
        parsed = []
        for path in sorted(self.maildir.glob("*.eml")):
            with open(path, "rb") as fh:
                parsed.append(BytesParser(policy=policy.default).parse(fh))
        return parsed

    def output(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self) -> int | None:
        """Send SIGTERM and return the exit status (killed after 10s)."""
        return None if self.process is None else stop_process(self.process, 10)


@pytest.fixture
def smtp_sink(tmp_path):
    """A real SMTP sink on a free port; its messages are files under a temporary maildir."""
    sink = SmtpSink(tmp_path / "mail", tmp_path / "smtp-sink.log")
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def webhook_receiver():
    """A local HTTP receiver whose answers a test scripts (``tests/support/webhook_receiver.py``)."""
    from tests.support.webhook_receiver import WebhookReceiver

    receiver = WebhookReceiver()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="session")
def _local_dns():
    from tests.support.dns_server import LocalDNS

    server = LocalDNS()
    yield server
    server.stop()


@pytest.fixture
def dns_records(app, _local_dns, monkeypatch):
    """A DNS server on loopback that the app's lookups ask; ``set_txt(name, *values)`` and
    ``set_addresses(name, *addresses)`` publish records for this test only."""
    monkeypatch.setitem(app.config, "DNS_NAMESERVERS", (_local_dns.nameserver,))
    yield _local_dns
    _local_dns.clear()
