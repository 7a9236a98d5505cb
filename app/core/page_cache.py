"""Whole pages in the cache: a member's page under a key of the tenant, the member and the exact
URL, stored with the versions it was rendered at (``cached_page``), and what a request for a path
reads with its session when that path last showed a cached page (``page_keys_for``)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import msgspec
from flask import g, request, session

from app.core import cache
from app.core.tenancy import require_tenant

#: Stands in for the viewer's CSRF token in cached HTML; replaced on every response.
CSRF_PLACEHOLDER = "__worklane_csrf_token__"
#: Topics per member of a tenant: their inbox count and their saved views.
_MEMBER_TOPICS = ("notifications", "views")


#: Who is viewing this request (a user id, or None): the accounts feature registers it with
#: ``viewer_from``. Until then no page is cached.
_VIEWER: dict[str, Callable[[], Any]] = {"find": lambda: None}


def viewer_from(find: Callable[[], Any]) -> None:
    """Register the function that names this request's viewer (their user id, or None)."""
    _VIEWER["find"] = find


#: The ``g`` attribute set by ``bypass``.
_BYPASSED = "page_cache_bypassed"


def bypass() -> None:
    """This request neither reads nor stores cached pages: its pages are rendered for it alone
    (an operator acting as someone: the banner saying so must reach neither the cache nor them)."""
    setattr(g, _BYPASSED, True)


def bypassed() -> bool:
    return g._get_current_object().get(_BYPASSED, False)


#: Where a request keeps the digest of its URL for ``page_key`` (asked for twice a request).
_URL_DIGEST = "worklane.page_url_digest"


def page_key(tenant_id, name: str, user_id, request) -> str:
    """The key of a person's cached page ``name`` at the request's exact URL (and htmx or not)."""
    environ = request.environ
    digest = environ.get(_URL_DIGEST)
    if digest is None:
        url = f"{request.full_path}|{environ.get('HTTP_HX_REQUEST', '')}"
        digest = environ[_URL_DIGEST] = hashlib.sha256(url.encode()).hexdigest()[:24]
    return cache.tenant_key_in(tenant_id, "page", name, user_id, digest)


#: The cached page each path showed last in this process: (tenant, name, topics, member topics),
#: so that the next request for it can read the page with the session (``page_keys_for``).
_PAGES: dict[str, tuple[Any, str, tuple, tuple]] = {}
_MAX_PAGES = 10_000


def remember_page(path: str, tenant_id, name: str, topics: tuple, member_topics=_MEMBER_TOPICS) -> None:
    """Note that ``path`` showed the cached page ``name``, read with ``cache.versions(*topics, *((t, user)
    for t in member_topics), along=page_key(...))``: the next request for it reads those keys with
    its session."""
    if _PAGES.get(path) != (tenant_id, name, topics, member_topics):
        if len(_PAGES) >= _MAX_PAGES:
            _PAGES.clear()
        _PAGES[path] = (tenant_id, name, topics, member_topics)


def _page_topics(topics: tuple, member_topics: tuple, user_id) -> tuple:
    """The topics whose versions a person's cached page is stored at: ``topics`` of the tenant,
    then ``member_topics`` of the person (followed, in ``page_versions``, by their account)."""
    return (*topics, *((topic, user_id) for topic in member_topics))


def page_versions(topics: tuple, member_topics: tuple, user_id, along: str | None = None) -> tuple:
    """The versions a person's cached page is stored at (``_page_topics`` and their account's),
    and the value stored under ``along`` (the page), read in the same round trip."""
    found = cache.versions(*_page_topics(topics, member_topics, user_id), along=along)
    numbers, stored = (found[:-1], found[-1]) if along is not None else (found, None)
    return (*numbers, cache.user_version(user_id, "account")), stored


def page_keys_for(request, user_id) -> list[str] | None:
    """The keys a cached page reads for this request of ``user_id`` (the versions of what the
    page shows, then the page), if this path last showed a cached page: a guess, taken only when
    the page asks for exactly these keys (same organization, person, page and topics)."""
    page = _PAGES.get(request.path)
    if page is None:
        return None
    tenant_id, name, topics, member_topics = page
    keys = cache.version_keys_in(tenant_id, _page_topics(topics, member_topics, user_id))
    return [*keys, page_key(tenant_id, name, user_id, request)]


def cached_page(
    name: str,
    render: Callable[..., str],
    *topics: str,
    timeout=cache.DEFAULT_TIMEOUT,
    shown: Callable[[], Any] | None = None,
):
    """A member's whole page, served from the cache until anything it shows changes.

    The page depends on the versions of ``topics`` (the tenant data on the page), the
    member's own topics (unread count, saved views) and the version of their account (their
    name, organizations and role, in the layout). It is stored under a key of the tenant, the
    member and the exact URL, together with the versions it was rendered at, so the page and
    the current versions come back in one round trip. The page is kept as it was sent, with the
    CSRF token of the session it was made for, and gzipped (``app.core.compression.kept_page``):
    that session is answered with it as it is, another fills its own token in. A page with a
    flash message to show is rendered, not cached.

    With ``shown`` (a function that reads what the page shows from ``topics``, as plain values,
    without rendering), ``render`` is given what it read. After ``topics`` moved (an edit
    anywhere in the organization), a page whose stored copy was made from the same values, with
    the member's own versions and account unchanged, is the same page: it is stored again under
    the new versions, neither rendered nor compressed again.
    """
    from app.core.compression import kept_html, kept_page, kept_response, precompress
    from app.core.csrf_tokens import csrf_token

    user_id = _VIEWER["find"]()
    if user_id is None or session._get_current_object().get("_flashes") or bypassed():
        return render() if shown is None else render(shown())
    tenant_id = require_tenant()
    current_request = request._get_current_object()
    remember_page(current_request.path, tenant_id, name, topics)
    key = page_key(tenant_id, name, user_id, current_request)
    current, stored = page_versions(topics, _MEMBER_TOPICS, user_id, along=key)
    if not (isinstance(stored, tuple) and len(stored) == 3):
        stored = None
    elif stored[0] == current:
        return kept_response(stored[1], CSRF_PLACEHOLDER, csrf_token())
    # The versions were read before the data: a change committed meanwhile moves them again.
    cache.read_ahead_while_rendering()
    with cache.stores_together():  # what rendering keeps (list rows, search results), with the page
        token = csrf_token()
        values = digest = None
        if shown is not None:
            values = shown()
            digest = hashlib.blake2b(msgspec.msgpack.encode(values), digest_size=16).digest()
        own = len(topics)  # the member's own versions and the account's follow the page's topics
        same = stored is not None and digest is not None and stored[2] == digest
        unchanged = same and stored[0][own:] == current[own:]
        if unchanged and stored[1][0] == token:
            kept = stored[1]
        else:
            if unchanged:
                html = kept_html(stored[1], CSRF_PLACEHOLDER)
            else:
                html = str(render() if shown is None else render(values)).replace(token, CSRF_PLACEHOLDER)
            kept = kept_page(html, CSRF_PLACEHOLDER, precompress(html, CSRF_PLACEHOLDER), token)
        cache.store(key, (current, kept, digest), timeout)
    return kept_response(kept, CSRF_PLACEHOLDER, token)
