"""Cached pages are gzipped once and each response's CSRF token spliced in: what a browser gets."""

from __future__ import annotations

import gzip
import re
import secrets

import brotli
import pytest

from app.core import compression
from app.core.page_cache import CSRF_PLACEHOLDER
from tests.accounts import csrf_token_from, login
from tests.factories import make_acme

#: What a browser sends (Chrome, Firefox).
BROWSER = {"Accept-Encoding": "gzip, deflate, br, zstd"}
PAGES = [
    "/acme/projects/WEB/issues",
    "/acme/issues",
    "/acme/projects/WEB/board",
    "/acme/issues/WEB-1",
    "/acme/search?q=login",
]
TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|value="([^"]+)" name="csrf_token"')


@pytest.fixture
def acme(db_session):
    """Acme (owner Olive, member Grace) with a WEB project of three issues."""
    acme = make_acme({"grace@example.com": "member"})
    for title in ("Broken login", "Login page slow", "Logo too small"):
        acme.add_issue(title)
    db_session.commit()
    return acme.id


def _gzipped(client, url) -> tuple[bytes, str]:
    response = client.get(url, headers=BROWSER)
    assert response.status_code == 200, url
    assert response.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response.headers["Vary"]
    return response.data, gzip.decompress(response.data).decode()


def _tokens(html: str) -> set[str]:
    return {a or b for a, b in TOKEN.findall(html)}


@pytest.mark.parametrize("url", PAGES)
def test_a_browser_gets_the_cached_page_gzipped_with_its_own_working_token(
    app, client, db_session, acme, url
):
    """A cached page comes gzipped from its stored copy with this session's token in every form."""
    login(client, "grace@example.com")
    _gzipped(client, url)  # rendered and stored
    other = app.test_client()
    login(other, "grace@example.com")
    _, html = _gzipped(other, url)
    plain = other.get(url).get_data(as_text=True)
    assert CSRF_PLACEHOLDER not in html
    token = csrf_token_from(html)
    assert _tokens(html) == {token} and html.count(token) >= 1
    # The same page as the one sent uncompressed, but for the token.
    assert html.replace(token, "T") == plain.replace(csrf_token_from(plain), "T")
    assert other.post("/logout", data={"csrf_token": token}).status_code in (302, 303)


@pytest.mark.parametrize("url", PAGES)
def test_two_sessions_get_the_same_stored_bytes_but_their_own_tokens(app, client, db_session, acme, url):
    """Two sessions' gzipped copies of a cached page differ only in the token's block and the checksum."""
    login(client, "grace@example.com")
    _gzipped(client, url)
    bodies = []
    for _ in range(2):
        other = app.test_client()
        login(other, "grace@example.com")
        body, html = _gzipped(other, url)
        bodies.append((body, csrf_token_from(html)))
    (first, first_token), (second, second_token) = bodies
    assert first_token != second_token
    # Per-response compression would code each body afresh; the spliced ones are the same stored
    # chunks around an uncompressed block of the token, its quote and spaces.
    first_slot = f'{first_token}"'.ljust(compression.SLOT_LENGTH).encode()
    second_slot = f'{second_token}"'.ljust(compression.SLOT_LENGTH).encode()
    assert first_slot in first and second_slot in second
    assert first[:-8].replace(first_slot, second_slot) == second[:-8]


def test_a_client_that_refuses_gzip_gets_the_page_as_before(app, client, db_session, acme):
    """Without gzip among the accepted encodings the cached page is sent as any other page."""
    login(client, "grace@example.com")
    _gzipped(client, PAGES[0])
    brotli_only = client.get(PAGES[0], headers={"Accept-Encoding": "br"})
    assert brotli_only.headers["Content-Encoding"] == "br"
    refused = client.get(PAGES[0], headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert refused.headers.get("Content-Encoding") is None
    assert "WEB-1" in refused.get_data(as_text=True)


def _page(slots: list[int], filler: str = "<p>work item</p>") -> str:
    """A page with token slots at the given character offsets of a long text."""
    html, position = "<html><body>", 0
    for offset in slots:
        html += filler * ((offset - position) // len(filler))
        html += f'<input name="csrf_token" type="hidden" value="{CSRF_PLACEHOLDER}">'
        position = offset
    return html + filler * 50 + "</body></html>"


@pytest.mark.parametrize(
    "slots",
    [[100], [100, 200, 300], [100, 40_000], [50_000, 51_000, 120_000], list(range(1_000, 150_000, 1_500))],
    ids=["one", "close", "beyond-a-window", "far-and-close", "a-board"],
)
def test_any_token_decodes_to_the_page_with_that_token_in_every_slot(app, slots):
    """However far apart the slots, the spliced stream decodes to the page with the response's token."""
    html = _page(slots)
    with app.test_request_context(headers=BROWSER):
        compressed = compression.precompress(html, CSRF_PLACEHOLDER)
        assert compressed is not None
        for length in (3, 90, 115, 122, 123):
            token = ("tk" + secrets.token_hex(64))[:length]
            response = compression.token_page(html, CSRF_PLACEHOLDER, compressed, token)
            body = app.process_response(response).data
            decoded = gzip.decompress(body).decode()
            assert decoded == html.replace(f'{CSRF_PLACEHOLDER}"', f'{token}"'.ljust(compression.SLOT_LENGTH))
            assert decoded.count(token) == len(slots)


def test_a_page_that_cannot_be_spliced_is_still_sent_whole(app):
    """A slot outside a quoted attribute or a page holding control bytes still gets its token everywhere."""
    outside = f"<html><script>let token = {CSRF_PLACEHOLDER};</script></html>"
    control = _page([100, 200]).replace("work item", "work\x01\x02\x03item")
    with app.test_request_context(headers=BROWSER):
        assert compression.precompress(outside, CSRF_PLACEHOLDER) is None
        assert compression.precompress("<html>no form</html>", CSRF_PLACEHOLDER) is None
        for html in (outside, control):
            token = "tk" + secrets.token_hex(40)
            kept = compression.precompress(html, CSRF_PLACEHOLDER)
            response = app.process_response(compression.token_page(html, CSRF_PLACEHOLDER, kept, token))
            decoded = _decoded(response).decode()
            assert CSRF_PLACEHOLDER not in decoded and decoded.count(token) == html.count(CSRF_PLACEHOLDER)


def _decoded(response) -> bytes:
    encoding = response.headers.get("Content-Encoding")
    if encoding == "br":
        return brotli.decompress(response.data)
    return gzip.decompress(response.data) if encoding == "gzip" else response.data


def test_a_body_replaced_after_the_page_was_made_is_compressed_as_it_is(app):
    """If anything replaces the body of a spliced page, the new body is what is compressed and sent."""
    html = _page([100, 5_000])
    with app.test_request_context(headers=BROWSER):
        compressed = compression.precompress(html, CSRF_PLACEHOLDER)
        response = compression.token_page(html, CSRF_PLACEHOLDER, compressed, "t" * 100)
        response.set_data("<html>" + "something else " * 100 + "</html>")
        sent = app.process_response(response)
        assert sent.headers["Content-Encoding"] in ("br", "gzip")
        assert _decoded(sent) == ("<html>" + "something else " * 100 + "</html>").encode()


def _kept_entries(redis_client, name: str) -> list:
    """The cached pages called ``name`` as stored (the cache's serialized values)."""
    from app.extensions import cache

    backend = cache.cache
    keys = [k.decode() for k in redis_client.keys(f"*:page:{name}:*")]
    return [backend.get(key[len(backend.key_prefix) :]) for key in keys]


@pytest.mark.parametrize("url", PAGES[:2] + PAGES[3:])
def test_the_session_a_page_was_kept_for_gets_the_kept_bytes_as_they_are(
    app, client, db_session, redis_client, acme, url
):
    """The session a page was stored for gets the stored gzip bytes; another fills its own token in."""
    login(client, "grace@example.com")
    first, html = _gzipped(client, url)  # rendered, stored with this session's token
    token = csrf_token_from(html)
    again, _ = _gzipped(client, url)
    assert again == first
    name = "issue" if "/issues/WEB-" in url else None
    kept = [entry for entry in _kept_entries(redis_client, name or "*") if entry]
    gzipped = [part for entry in kept for part in _gzip_bodies(entry)]
    assert first in gzipped, "the response is the stored gzip body itself"
    other = app.test_client()
    login(other, "grace@example.com")
    _, their_html = _gzipped(other, url)
    assert csrf_token_from(their_html) not in (None, token) and token not in their_html
    assert other.post("/logout", data={"csrf_token": csrf_token_from(their_html)}).status_code in (302, 303)
    # The other session's request left the stored page as it was: the first session's bytes.
    assert _gzipped(client, url)[0] == first
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    assert plain.headers.get("Content-Encoding") is None
    assert plain.data == gzip.decompress(first)


def _gzip_bodies(value) -> list[bytes]:
    """Every gzip stream inside a stored value (tuples nested at any depth)."""
    if isinstance(value, bytes):
        return [value] if value.startswith(b"\x1f\x8b") else []
    if isinstance(value, tuple | list):
        return [found for item in value for found in _gzip_bodies(item)]
    return []


def test_a_page_under_the_kept_large_size_is_kept_gzipped_at_the_default_level(app, client, db_session):
    """A 20-40 KB issue page is gzipped once, when kept: at the default level, not the cheap large one."""
    acme = make_acme({"grace@example.com": "member"})
    words = [f"word{n % 97} is part {n} of the long description of this issue." for n in range(150)]
    ref = acme.add_issue("A long issue", description=" ".join(words)).ref
    db_session.commit()
    login(client, "grace@example.com")
    kept, html = _gzipped(client, f"/acme/issues/{ref}")
    body = html.encode()
    assert app.config["COMPRESS_LARGE_SIZE"] < len(body) < app.config["COMPRESS_KEPT_LARGE_SIZE"]
    cheap = gzip.compress(body, app.config["COMPRESS_LARGE_LEVEL"])
    default = gzip.compress(body, app.config["COMPRESS_LEVEL"])
    assert len(kept) < len(cheap)
    assert len(kept) <= len(default) + 300  # the token's stored block and the flushes around it
