"""The one place cache keys are made, and the named invalidators that write paths call.

Keys always say whose data they hold:

- ``t:<tenant>:…`` — tenant data; built from the *current* tenant, so a value cached for A
  can only ever be looked up while A is the tenant;
- ``u:<user>:…`` — one person's data across organizations (their switcher);
- ``g:…`` — the same for everybody.

Expiry is key-based: a tenant's cached values include a version number in their key, and
an edit bumps the version (``changed(...)``) instead of hunting down keys to delete.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

from flask import g, has_app_context
from redis.exceptions import RedisError
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.extensions import cache, db
from app.tenancy import require_tenant

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 300
_PENDING = "worklane_cache_bumps"
_VERSION_TIMEOUT = 7 * 24 * 3600


def tenant_key(name: str, *parts: Any) -> str:
    return ":".join(["t", str(require_tenant()), name, *map(str, parts)])


def user_key(user_id, name: str, *parts: Any) -> str:
    return ":".join(["u", str(user_id), name, *map(str, parts)])


def global_key(name: str, *parts: Any) -> str:
    return ":".join(["g", name, *map(str, parts)])


def _other_tenant_key(tenant_id, name: str, *parts: Any) -> str:
    """Another tenant's key: only for moving its versions (never for reading its values)."""
    return ":".join(["t", str(tenant_id), name, *map(str, parts)])


def _topic_key(topic: str, parts: tuple) -> str:
    return tenant_key("version", ".".join([topic, *map(str, parts)]))


def versions(*topics: str | tuple, along: str | None = None) -> tuple[int, ...]:
    """The current versions of kinds of the tenant's data (0 until each first changes).

    A topic is a name (``"issues"``) or a name with parts (``("notifications", user_id)``).
    Read with one round trip for all of them, and once per request: later reads in the same
    request answer from memory (a commit forgets what it moved). The value under the key
    ``along``, if given, is read in the same round trip and returned last.
    """
    keys = [_topic_key(t, ()) if isinstance(t, str) else _topic_key(t[0], t[1:]) for t in topics]
    known = _request_memo()
    missing = [key for key in keys if key not in known]
    extra = [along] if along is not None else []
    found = _get_many([*missing, *extra]) if missing or extra else []
    for key, value in zip(missing, found, strict=False):
        known[key] = int(value or 0)
    numbers = tuple(known[key] for key in keys)
    return (*numbers, found[-1]) if extra else numbers


def version(topic: str, *parts: Any) -> int:
    """The current version of one kind of the tenant's data (0 until it first changes)."""
    return versions((topic, *parts))[0]


def changed(topic: str, *parts: Any) -> None:
    """Named invalidation: what is cached about ``topic`` for this tenant goes stale.

    The version moves when the transaction commits (not before: a reader between the
    change and the commit would cache old data under the new version); a rollback
    forgets it.
    """
    _bump_at_commit(_topic_key(topic, parts))


def changed_in(tenant_id, topic: str, session: Session | None = None) -> None:
    """Like ``changed`` for a tenant other than the current one (a person's name in each)."""
    _bump_at_commit(_other_tenant_key(tenant_id, "version", topic), session)


def _bump_at_commit(key: str, session: Session | None = None) -> None:
    (session or db.session).info.setdefault(_PENDING, set()).add(key)


def _request_memo() -> dict[str, int]:
    if not has_app_context():
        return {}
    if "cache_versions" not in g:
        g.cache_versions = {}
    return g.cache_versions


def _get_many(keys: list[str]) -> list[Any]:
    try:
        return cache.cache.get_many(*keys)
    except RedisError as exc:
        log.warning("cache unavailable", extra={"error": str(exc)})
        return [None] * len(keys)


def user_version(user_id, topic: str) -> int:
    key = user_key(user_id, "version", topic)
    known = _request_memo()
    if key not in known:
        known[key] = int(_get_many([key])[0] or 0)
    return known[key]


def user_changed(user_id, topic: str, session: Session | None = None) -> None:
    """Like ``changed`` for one person's data that spans organizations (their account)."""
    _bump_at_commit(user_key(user_id, "version", topic), session)


def memoize_for_user(
    user_id,
    topic: str,
    name: str,
    compute: Callable[[], Any],
    timeout=DEFAULT_TIMEOUT,
):
    """The person's cached value for ``name``, computed on a miss; expires when ``topic`` changes.

    The value is stored with the version it was computed at, under a fixed key, so the
    version and the value come back in one round trip.
    """
    version_key, key = user_key(user_id, "version", topic), user_key(user_id, name)
    current, stored = _get_many([version_key, key])
    current = _request_memo()[version_key] = int(current or 0)
    if isinstance(stored, tuple) and len(stored) == 2 and stored[0] == current:
        return stored[1]
    # The version was read before the data: a change committed meanwhile moves it again.
    value = compute()
    _set(key, (current, value), timeout)
    return value


def _set(key: str, value: Any, timeout) -> None:
    try:
        cache.set(key, value, timeout=timeout)
    except RedisError as exc:
        log.warning("cache unavailable", extra={"error": str(exc)})


def _bump(client, key: str) -> None:
    client.incr(key)
    client.expire(key, _VERSION_TIMEOUT)


@event.listens_for(Session, "after_commit")
def _apply_pending_bumps(session) -> None:
    keys = session.info.pop(_PENDING, ())
    if not keys:
        return
    backend = cache.cache
    if has_app_context():
        _request_memo().clear()
    try:
        pipe = backend._write_client.pipeline(transaction=False)
        for key in keys:
            _bump(pipe, backend._get_prefix() + key)
        pipe.execute()
    except RedisError as exc:
        # The data is committed; with Redis away nothing is served from the cache either.
        # Values cached before the outage expire within their timeout.
        log.warning("cache versions not bumped", extra={"keys": sorted(keys), "error": str(exc)})


@event.listens_for(Session, "after_soft_rollback")
def _forget_pending_bumps(session, previous_transaction) -> None:
    if previous_transaction.parent is None:  # the outermost transaction
        session.info.pop(_PENDING, None)


def memoize_for_tenant(
    topic: str | tuple, name: str, compute: Callable[[], Any], *parts: Any, timeout=DEFAULT_TIMEOUT
):
    """The tenant's cached value for ``name``, computed on a miss; expires when ``topic`` changes."""
    return _memoized(tenant_key(name, f"v{versions(topic)[0]}", *parts), compute, timeout)


def _memoized(key: str, compute: Callable[[], Any], timeout) -> Any:
    value = _get_many([key])[0]
    if value is None:
        value = compute()
        _set(key, value, timeout)
    return value


# --- whole pages ----------------------------------------------------------------------------

#: Stands in for the viewer's CSRF token in cached HTML; replaced on every response.
CSRF_PLACEHOLDER = "__worklane_csrf_token__"
#: Topics per member of a tenant: their inbox count and their saved views.
_MEMBER_TOPICS = ("notifications", "views")


def cached_page(name: str, render: Callable[[], str], *topics: str, timeout=DEFAULT_TIMEOUT) -> str:
    """A member's whole page, served from the cache until anything it shows changes.

    The page depends on the versions of ``topics`` (the tenant data on the page), the
    member's own topics (unread count, saved views) and the version of their account (their
    name, organizations and role, in the layout). It is stored under a key of the tenant, the
    member and the exact URL, together with the versions it was rendered at, so the page and
    the current versions come back in one round trip. The CSRF token is stored as a
    placeholder and filled in per response. A page with a flash message to show is rendered,
    not cached.
    """
    from flask import request, session
    from flask_wtf.csrf import generate_csrf

    from app.auth.identity import signed_in

    account = signed_in()
    if account is None or session.get("_flashes"):
        return render()
    user_id = account.user_id
    url = f"{request.full_path}|{request.headers.get('HX-Request', '')}"
    key = tenant_key("page", name, user_id, hashlib.sha256(url.encode()).hexdigest()[:24])
    *numbers, stored = versions(*topics, *((topic, user_id) for topic in _MEMBER_TOPICS), along=key)
    current = (*numbers, user_version(user_id, "account"))
    if isinstance(stored, tuple) and len(stored) == 2 and stored[0] == current:
        return stored[1].replace(CSRF_PLACEHOLDER, generate_csrf())
    # The versions were read before the data: a change committed meanwhile moves them again.
    html = str(render())
    _set(key, (current, html.replace(generate_csrf(), CSRF_PLACEHOLDER)), timeout)
    return html


# --- named invalidators ---------------------------------------------------------------------


def members_changed(*user_ids) -> None:
    """Membership changed; the named people's accounts (organizations, roles) change too."""
    changed("members")
    for user_id in user_ids:
        user_changed(user_id, "account")


def organization_changed(member_ids) -> None:
    """The organization's name or address changed: every member's account shows it."""
    changed("organization")
    for user_id in member_ids:
        user_changed(user_id, "account")


def notifications_changed(*user_ids) -> None:
    """The named members' notifications in this organization changed (new, read)."""
    for user_id in user_ids:
        changed("notifications", user_id)


def views_changed(user_id) -> None:
    """The member's saved views in this organization changed."""
    changed("views", user_id)


def projects_changed() -> None:
    changed("projects")


def issues_changed() -> None:
    changed("issues")


def labels_changed() -> None:
    changed("labels")
