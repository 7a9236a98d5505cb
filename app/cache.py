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

import logging
from collections.abc import Callable
from typing import Any

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


def version(topic: str) -> int:
    """The current version of one kind of the tenant's data (0 until it first changes)."""
    return int(cache.get(tenant_key("version", topic)) or 0)


def changed(topic: str) -> None:
    """Named invalidation: what is cached about ``topic`` for this tenant goes stale.

    The version moves when the transaction commits (not before: a reader between the
    change and the commit would cache old data under the new version); a rollback
    forgets it.
    """
    _bump_at_commit(tenant_key("version", topic))


def _bump_at_commit(key: str) -> None:
    db.session.info.setdefault(_PENDING, set()).add(key)


def user_version(user_id, topic: str) -> int:
    return int(cache.get(user_key(user_id, "version", topic)) or 0)


def user_changed(user_id, topic: str) -> None:
    """Like ``changed`` for one person's data that spans organizations (their switcher)."""
    _bump_at_commit(user_key(user_id, "version", topic))


def memoize_for_user(user_id, topic: str, name: str, compute: Callable[[], Any], timeout=DEFAULT_TIMEOUT):
    return _memoized(user_key(user_id, name, f"v{user_version(user_id, topic)}"), compute, timeout)


def _bump(key: str) -> None:
    try:
        if not cache.cache.inc(key):
            cache.set(key, 1, timeout=_VERSION_TIMEOUT)
    except RedisError as exc:
        # The data is committed; with Redis away nothing is served from the cache either.
        # Values cached before the outage expire within DEFAULT_TIMEOUT.
        log.warning("cache version not bumped", extra={"key": key, "error": str(exc)})


@event.listens_for(Session, "after_commit")
def _apply_pending_bumps(session) -> None:
    for key in session.info.pop(_PENDING, ()):
        _bump(key)


@event.listens_for(Session, "after_soft_rollback")
def _forget_pending_bumps(session, previous_transaction) -> None:
    if previous_transaction.parent is None:  # the outermost transaction
        session.info.pop(_PENDING, None)


def memoize_for_tenant(
    topic: str, name: str, compute: Callable[[], Any], *parts: Any, timeout=DEFAULT_TIMEOUT
):
    """The tenant's cached value for ``name``, computed on a miss; expires when ``topic`` changes."""
    return _memoized(tenant_key(name, f"v{version(topic)}", *parts), compute, timeout)


def _memoized(key: str, compute: Callable[[], Any], timeout) -> Any:
    value = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, timeout=timeout)
    return value


# --- named invalidators ---------------------------------------------------------------------


def members_changed(*user_ids) -> None:
    """Membership changed; the named people's organization lists change too."""
    changed("members")
    for user_id in user_ids:
        user_changed(user_id, "organizations")


def projects_changed() -> None:
    changed("projects")


def issues_changed() -> None:
    changed("issues")


def labels_changed() -> None:
    changed("labels")
