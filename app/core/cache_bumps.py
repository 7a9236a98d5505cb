"""Moving cache versions in Redis: the bumps of a commit, and those an outage of the cache Redis
left unapplied, applied again once it is back."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from redis.exceptions import RedisError

from app.extensions import cache

log = logging.getLogger(__name__)

_VERSION_TIMEOUT = 7 * 24 * 3600


def _bump(client, key: str) -> None:
    client.incr(key)
    client.expire(key, _VERSION_TIMEOUT)


#: Version keys whose bump failed because the cache Redis was away. The data is committed, and
#: while Redis is away nothing is served from the cache; but once it is back, pages cached
#: before the change would show the old data. So this process bumps them again before it next
#: reads the cache (or commits). Another process serving a page cached before the change in
#: the moment between can show it once; a process that exits first leaves those pages to
#: expire within their timeout.
unapplied_bumps: set[str] = set()
_unapplied_lock = threading.Lock()
_MAX_UNAPPLIED = 100_000


def _bump_all(keys: Iterable[str]) -> None:
    backend = cache.cache
    pipe = backend._write_client.pipeline(transaction=False)
    for key in keys:
        _bump(pipe, backend._get_prefix() + key)
    pipe.execute()


def _keep_unapplied(keys: Iterable[str], exc: RedisError) -> None:
    with _unapplied_lock:
        room = _MAX_UNAPPLIED - len(unapplied_bumps)
        keys = sorted(keys)
        unapplied_bumps.update(keys[: max(room, 0)])
    extra = {"keys": keys[:20], "count": len(keys), "error": str(exc)}
    log.warning("cache versions not bumped yet", extra=extra)


def apply_unapplied_bumps() -> None:
    """Bump what an outage left unbumped (raises RedisError while the cache Redis is still away)."""
    with _unapplied_lock:
        keys = set(unapplied_bumps)
        unapplied_bumps.clear()
    if not keys:
        return
    try:
        _bump_all(keys)
    except RedisError as exc:
        _keep_unapplied(keys, exc)
        raise
    log.info("cache versions bumped after an outage", extra={"count": len(keys)})


def bump_versions(keys: set[str]) -> None:
    """Move the versions under ``keys`` (with any an outage left unapplied); while the cache Redis
    is away they are kept to be applied once it is back."""
    with _unapplied_lock:
        keys = keys | unapplied_bumps
        unapplied_bumps.clear()
    try:
        _bump_all(keys)
    except RedisError as exc:
        _keep_unapplied(keys, exc)
