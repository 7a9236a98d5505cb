"""Request ids, logs, error pages, compression and static assets."""

from __future__ import annotations

import gzip
import io
import json
import logging
import re
import urllib.request
from pathlib import Path

import brotli
import pytest
from flask import abort
from sqlalchemy.exc import ProgrammingError

from app.core.logs import configure_logging
from tests.conftest import free_port


def test_home_page_renders(client):
    """The home page renders in the layout, with no form that starts background work."""
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<title>" in html and "Worklane" in html
    assert 'name="viewport"' in html
    assert "system-check" not in html and 'method="post"' not in html


def test_request_id_is_honoured_or_generated(client):
    """An incoming X-Request-ID is echoed back; a missing or bogus one is replaced."""
    given = client.get("/healthz", headers={"X-Request-ID": "abc-123.x"})
    assert given.headers["X-Request-ID"] == "abc-123.x"
    generated = client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["X-Request-ID"])
    bogus = client.get("/healthz", headers={"X-Request-ID": "bad id <script>" + "x" * 200})
    assert re.fullmatch(r"[0-9a-f]{32}", bogus.headers["X-Request-ID"])


def test_access_log_line_per_request(client, caplog):
    """Every request logs one access line with method, path, status, duration and request id."""
    with caplog.at_level(logging.INFO, logger="worklane.access"):
        client.get("/healthz?probe=1", headers={"X-Request-ID": "req-42"})
    records = [r for r in caplog.records if r.name == "worklane.access"]
    assert len(records) == 1
    record = records[0]
    assert record.request_id == "req-42"
    assert (record.method, record.path, record.status) == ("GET", "/healthz", 200)
    assert record.duration_ms >= 0


def test_logs_are_json_with_request_id(app, monkeypatch):
    """The log handler writes one JSON object per line, carrying the request id."""
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging("INFO", json=True)
    try:
        with app.test_request_context("/"):
            from flask import g

            g.request_id = "json-req-7"
            logging.getLogger("worklane.test").info("hello", extra={"answer": 42})
            try:
                raise ValueError("kaput")
            except ValueError:
                logging.getLogger("worklane.test").exception("failed %s", "here")
    finally:
        monkeypatch.undo()
        configure_logging(app.config["LOG_LEVEL"], json=app.config["LOG_JSON"])
    line = next(ln for ln in stream.getvalue().splitlines() if "hello" in ln)
    payload = json.loads(line)
    assert payload["message"] == "hello"
    assert payload["request_id"] == "json-req-7"
    assert payload["answer"] == 42
    assert payload["level"] == "INFO"
    assert payload["logger"] == "worklane.test"
    assert list(payload)[:5] == ["time", "level", "logger", "message", "request_id"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}", payload["time"])
    failed = json.loads(next(ln for ln in stream.getvalue().splitlines() if "failed here" in ln))
    assert (failed["level"], failed["request_id"]) == ("ERROR", "json-req-7")
    assert failed["exc_info"].startswith("Traceback") and "ValueError: kaput" in failed["exc_info"]


@pytest.fixture
def broken_app(migrated_env, make_app):
    """An app whose database is unreachable, with routes that fail in every way."""
    url = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none?connect_timeout=2"
    app = make_app({**migrated_env, "DATABASE_URL": url})
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/boom")
    def boom():
        raise RuntimeError("kaput")

    @app.get("/needs-db")
    def needs_db():
        from app.extensions import db

        db.session.execute(db.text("SELECT 1"))
        return "unreachable"

    @app.get("/bad-sql")
    def bad_sql():
        raise ProgrammingError(
            "SELECT nothing FROM nowhere", {}, Exception('relation "nowhere" does not exist')
        )

    @app.get("/forbidden")
    def forbidden():
        abort(403)

    @app.get("/slow-down")
    def slow_down():
        abort(429)

    @app.get("/bad")
    def bad():
        abort(400, "The date must look like 2026-12-31.")

    return app


@pytest.mark.parametrize(
    ("method", "path", "code", "title"),
    [
        ("GET", "/bad", 400, "Bad request"),
        ("GET", "/forbidden", 403, "Not allowed"),
        ("GET", "/no/such/page", 404, "Page not found"),
        ("POST", "/healthz", 405, "Method not allowed"),
        ("GET", "/slow-down", 429, "Too many requests"),
        ("GET", "/boom", 500, "Something went wrong"),
        ("GET", "/bad-sql", 500, "Something went wrong"),
        ("GET", "/needs-db", 503, "Temporarily unavailable"),
    ],
)
def test_error_pages_render_with_database_down(broken_app, method, path, code, title):
    """Each error page renders in the layout, with the database unreachable."""
    response = broken_app.test_client().open(path, method=method)
    assert response.status_code == code
    html = response.get_data(as_text=True)
    assert f"<h1>{title}</h1>" in html
    assert 'class="topbar"' in html
    assert "Traceback" not in html and "kaput" not in html


def test_error_page_keeps_a_views_reason(broken_app):
    """abort(400, reason) shows the reason to the user."""
    html = broken_app.test_client().get("/bad").get_data(as_text=True)
    assert "The date must look like 2026-12-31." in html


def test_405_lists_allowed_methods(broken_app):
    """A 405 answer says which methods are allowed."""
    response = broken_app.test_client().post("/healthz")
    assert "GET" in response.headers["Allow"]


def test_errors_are_json_for_json_clients(broken_app):
    """Clients that ask for JSON get a JSON error body."""
    response = broken_app.test_client().get("/no/such/page", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.json["error"]["status"] == 404
    assert response.json["error"]["title"] == "Page not found"


def test_unhandled_database_error_is_logged(broken_app, caplog):
    """An unhandled error is logged with its traceback while the user sees a clean page."""
    with caplog.at_level(logging.ERROR):
        broken_app.test_client().get("/bad-sql")
    assert any(r.exc_info and r.exc_info[0] is ProgrammingError for r in caplog.records)


def test_unreachable_database_is_a_503_with_retry_after_and_a_warning(broken_app, caplog):
    """A database that cannot be reached is no fault of the request: 503 with Retry-After, and a
    warning naming the error in the log."""
    with caplog.at_level(logging.WARNING):
        response = broken_app.test_client().get("/needs-db")
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    warnings = [r for r in caplog.records if r.name == "app.core.errors" and r.levelno == logging.WARNING]
    assert warnings and "connection" in warnings[0].error.lower()


def test_html_is_compressed(client):
    """HTML is sent brotli- or gzip-compressed and shrinks by well over half."""
    plain = client.get("/", headers={"Accept-Encoding": "identity"})
    brotli = client.get("/", headers={"Accept-Encoding": "br, gzip"})
    gzip = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert plain.headers.get("Content-Encoding") is None
    assert brotli.headers["Content-Encoding"] == "br"
    assert gzip.headers["Content-Encoding"] == "gzip"
    assert len(brotli.data) < 0.5 * len(plain.data)
    assert "Accept-Encoding" in brotli.headers["Vary"]


@pytest.fixture
def sized_app(migrated_env, make_app):
    """An app with a page of a given number of bytes, and its ETag, at /sized/<n>."""
    app = make_app(migrated_env)

    @app.get("/sized/<int:size>")
    def sized(size):
        # Text like a page's, varied enough that compression levels differ in what they save.
        words = [
            f"<li class=row-{n % 7}>issue {n * 7919 % 10007} needs review</li>" for n in range(size // 40 + 1)
        ]
        response = app.make_response("".join(words)[:size])
        response.set_etag(f"tag{size}")
        return response

    return app


@pytest.mark.parametrize("size", [12_000, 30_000, 200_000])
def test_a_body_is_compressed_at_the_level_for_its_size(sized_app, size):
    """A large body is compressed at the cheap large-body levels, a small one at the default ones;
    either decompresses to the page, with Vary and an ETag marked with its encoding."""
    client = sized_app.test_client()
    plain = client.get(f"/sized/{size}", headers={"Accept-Encoding": "identity"}).data
    assert len(plain) == size
    config = sized_app.config
    large = size >= config["COMPRESS_LARGE_SIZE"]
    br = client.get(f"/sized/{size}", headers={"Accept-Encoding": "br, gzip"})
    assert br.headers["Content-Encoding"] == "br" and "Accept-Encoding" in br.headers["Vary"]
    assert brotli.decompress(br.data) == plain
    quality = config["COMPRESS_LARGE_BR_LEVEL"] if large else config["COMPRESS_BR_LEVEL"]
    expected = brotli.compress(
        plain, mode=config["COMPRESS_BR_MODE"], quality=quality, lgwin=config["COMPRESS_BR_WINDOW"]
    )
    assert br.data == expected
    assert br.headers["ETag"] == f'"tag{size}:br"'
    unchanged = client.get(
        f"/sized/{size}", headers={"Accept-Encoding": "br", "If-None-Match": f'"tag{size}:br"'}
    )
    assert unchanged.status_code == 304
    gzipped = client.get(f"/sized/{size}", headers={"Accept-Encoding": "gzip"})
    assert gzipped.headers["Content-Encoding"] == "gzip" and gzip.decompress(gzipped.data) == plain
    level = config["COMPRESS_LARGE_LEVEL"] if large else config["COMPRESS_LEVEL"]
    assert len(gzipped.data) == len(gzip.compress(plain, level))


def test_a_body_below_the_minimum_is_sent_as_it_is_with_vary(sized_app):
    """A body under COMPRESS_MIN_SIZE is sent uncompressed, still saying it varies by Accept-Encoding."""
    client = sized_app.test_client()
    size = sized_app.config["COMPRESS_MIN_SIZE"] - 1
    small = client.get(f"/sized/{size}", headers={"Accept-Encoding": "br, gzip"})
    assert small.headers.get("Content-Encoding") is None and len(small.data) == size
    assert "Accept-Encoding" in small.headers["Vary"]
    assert small.headers["ETag"] == f'"tag{size}"'
    at_minimum = client.get(f"/sized/{size + 1}", headers={"Accept-Encoding": "br"})
    assert at_minimum.headers["Content-Encoding"] == "br"


def test_static_assets_have_versioned_immutable_urls(client):
    """Layout asset URLs carry a content hash and are cached for a year; bare URLs are not."""
    html = client.get("/").get_data(as_text=True)
    css_url = re.search(r'href="(/static/css/app\.css\?v=[0-9a-f]{12})"', html).group(1)
    with client.get(css_url) as versioned:
        assert versioned.status_code == 200
        assert "immutable" in versioned.headers["Cache-Control"]
        assert "max-age=31536000" in versioned.headers["Cache-Control"]
    with client.get("/static/css/app.css") as bare:
        assert "immutable" not in (bare.headers.get("Cache-Control") or "")
    assert re.search(r'src="/static/vendor/htmx-2\.0\.8\.min\.js\?v=[0-9a-f]{12}"', html)


@pytest.mark.parametrize("encoding", ["br", "gzip"])
def test_a_large_static_file_is_sent_compressed_and_whole(app, live_server, encoding):
    """Served by waitress, a stylesheet over the large-body size comes compressed and decodes to the file."""
    path = Path(app.static_folder) / "css" / "app.css"
    assert path.stat().st_size >= app.config["COMPRESS_LARGE_SIZE"]
    request = urllib.request.Request(
        live_server.url + "/static/css/app.css", headers={"Accept-Encoding": encoding}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Encoding"] == encoding
        body = response.read()
    decoded = brotli.decompress(body) if encoding == "br" else gzip.decompress(body)
    assert decoded == path.read_bytes()


def test_layout_loads_nothing_from_other_hosts(client):
    """No CDN: every script, stylesheet and icon comes from this server."""
    html = client.get("/").get_data(as_text=True)
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert not url.startswith(("http:", "https:", "//")), url


def test_vary_names_each_request_header_once_and_keeps_the_others():
    """Vary gets a header once, whatever its case, after those already named."""
    from werkzeug.datastructures import Headers

    from app.core.headers import vary_on

    headers = Headers()
    vary_on(headers, "Accept-Encoding")
    vary_on(headers, "Cookie")
    vary_on(headers, "cookie")
    vary_on(headers, "accept-encoding")
    assert headers["Vary"] == "Accept-Encoding, Cookie"
    headers["Vary"] = "X-Cookie-Jar"
    vary_on(headers, "Cookie")
    assert headers["Vary"] == "X-Cookie-Jar, Cookie"
