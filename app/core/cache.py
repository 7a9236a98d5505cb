"""The one place cache keys are made, and how cached values are read and stored.

Keys always say whose data they hold:

- ``t:<tenant>:…`` — tenant data; built from the *current* tenant, so a value cached for A
  can only ever be looked up while A is the tenant;
- ``u:<user>:…`` — one person's data across organizations (their switcher);
- ``g:…`` — the same for everybody.

Expiry is key-based: cached values include the versions of the kinds of data (topics) they
show in their key, or are stored with them, and a change bumps a version instead of hunting
down keys to delete. The versions move from the data change itself, at commit
(app/core/cache_topics.py); whole pages are cached by app/core/page_cache.py.
"""

from __future__ import annotations

import functools
import logging
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from cachelib.serializers import RedisSerializer
from flask import current_app, g, has_app_context
from redis.exceptions import RedisError

from app.core.cache_bumps import apply_unapplied_bumps, unapplied_bumps
from app.core.tenancy import require_tenant
from app.extensions import cache

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 300


def tenant_key(name: str, *parts: Any) -> str:
    return tenant_key_in(require_tenant(), name, *parts)


#: An organization's or a person's id as text: a page builds a dozen keys from the same two ids,
#: and ``str`` of a UUID is Python code (``uuid.UUID.__str__``).
_id_text = functools.lru_cache(maxsize=4096)(str)


def tenant_key_in(tenant_id, name: str, *parts: Any) -> str:
    """A key of ``tenant_id``'s data, named outside the tenant's context (a page's key, built
    before the tenant is current)."""
    return ":".join(["t", _id_text(tenant_id), name, *map(str, parts)])


def user_key(user_id, name: str, *parts: Any) -> str:
    return ":".join(["u", _id_text(user_id), name, *map(str, parts)])


def topic_key_in(tenant_id, topic: str, *parts: Any) -> str:
    """The version key of a tenant's topic, named outside the tenant's context (to move it at a
    commit, or to read it with the session before the tenant is known)."""
    return tenant_key_in(tenant_id, "version", ".".join([topic, *map(str, parts)]))


@functools.lru_cache(maxsize=4096)
def user_topic_key(user_id, topic: str) -> str:
    """The version key of a person's topic (made once per person and topic: every request of a
    signed-in person reads their account's)."""
    return user_key(user_id, "version", topic)


def _version_key_in(tenant_id, topic: str | tuple) -> str:
    """The version key of a topic given as ``versions`` takes it: a name, or a name with parts."""
    return topic_key_in(tenant_id, topic) if isinstance(topic, str) else topic_key_in(tenant_id, *topic)


#: The version keys of a tenant's topics, by (tenant, topics): every warm page asks for the same
#: few lists, and making one costs about 2 µs a key.
_VERSION_KEYS: dict[tuple, tuple[str, ...]] = {}
_MAX_VERSION_KEYS = 10_000


def version_keys_in(tenant_id, topics: tuple) -> tuple[str, ...]:
    """The version keys of ``tenant_id``'s ``topics`` (each a name or a name with parts)."""
    signature = (tenant_id, topics)
    keys = _VERSION_KEYS.get(signature)
    if keys is None:
        if len(_VERSION_KEYS) >= _MAX_VERSION_KEYS:
            _VERSION_KEYS.clear()
        keys = _VERSION_KEYS[signature] = tuple(_version_key_in(tenant_id, t) for t in topics)
    return keys


def versions(*topics: str | tuple, along: str | None = None) -> tuple[int, ...]:
    """The current versions of kinds of the tenant's data (0 until each first changes).

    A topic is a name (``"issues"``) or a name with parts (``("notifications", user_id)``).
    Read with one round trip for all of them, and once per request: later reads in the same
    request answer from memory (a commit forgets what it moved). The value under the key
    ``along``, if given, is read in the same round trip and returned last.
    """
    keys = version_keys_in(require_tenant(), topics)
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


def _request_memo() -> dict[str, int]:
    if not has_app_context():
        return {}
    # The proxy resolved first: an attribute read through ``g`` costs about 1 µs.
    return g._get_current_object().setdefault("cache_versions", {})


def forget_versions_read() -> None:
    """Forget the versions (and values read along with the session) this request has read: a
    commit moved some of them."""
    if has_app_context():
        _request_memo().clear()
        g.pop(_READ_EARLIER, None)


def _get_many(keys: list[str]) -> list[Any]:
    read = _read_earlier(keys)
    if read is not None:
        return read
    along = _reads_ahead(keys)
    try:
        if unapplied_bumps:
            apply_unapplied_bumps()
        values = cache.cache.get_many(*keys, *(key for group in along for key in group))
    except RedisError as exc:
        log.warning("cache unavailable", extra={"error": str(exc)})
        return [None] * len(keys)
    if along:
        earlier = g._get_current_object().setdefault(_READ_EARLIER, {})
        rest = iter(values[len(keys) :])
        for group in along:
            earlier[tuple(group)] = [next(rest) for _ in group]
    return values[: len(keys)]


# --- values read earlier in the request, in another round trip ------------------------------

_READ_EARLIER = "cache_read_earlier"


def read_along(*groups: list[str]) -> tuple[list[str], Callable[[list], None]] | None:
    """For reading groups of cache keys with another client of the cache's Redis (the session's):
    the keys as stored there, and a function that keeps the raw values read for this request,
    where the next read of exactly one group's keys takes them instead of asking Redis. None when
    they must be read from the cache itself (outside a request, or while version bumps wait to be
    applied)."""
    if unapplied_bumps or not has_app_context():
        return None
    backend = _backend()
    prefix = backend._get_prefix()
    loads = _loads if type(backend.serializer) is RedisSerializer else backend.serializer.loads

    def take(raw_values: list) -> None:
        earlier = g._get_current_object().setdefault(_READ_EARLIER, {})
        values = iter(raw_values)
        for keys in groups:
            earlier[tuple(keys)] = [loads(next(values)) for _ in keys]

    return [prefix + key for keys in groups for key in keys], take


def _loads(raw: bytes | None) -> Any:
    """cachelib's ``RedisSerializer.loads``, unpickling past the value's mark without first copying
    the rest of it (a kept page is tens of KB)."""
    if raw is not None and raw[:1] == b"!":
        try:
            return pickle.loads(memoryview(raw)[1:])
        except pickle.PickleError:
            return None
    return _SERIALIZER.loads(raw)


_SERIALIZER = RedisSerializer()


def _backend():
    """The cache's client in a request (Flask-Caching's ``cache.cache``, whose read of the app
    goes through the ``current_app`` proxy: about 1 µs)."""
    return current_app._get_current_object().extensions["cache"][cache]


# --- keys a page rendered anew reads anyway, read with the render's first read ----------------

#: Functions naming keys that a cached page rendered anew reads anyway (see ``read_when_rendering``).
_READ_WHEN_RENDERING: list[Callable[[], list[str] | None]] = []
_READS_AHEAD = "cache_reads_ahead"


def read_when_rendering(keys_for: Callable[[], list[str] | None]) -> None:
    """Register ``keys_for() -> keys or None``: cache keys every page rendered anew reads (the
    layout's), read along with the first read of the cache the render makes (``cached_page``)
    rather than in a round trip of their own. ``keys_for`` must not ask Redis itself."""
    _READ_WHEN_RENDERING.append(keys_for)


def read_ahead_while_rendering(*more: list[str] | None) -> None:
    """The next read of the cache in this request also reads the keys ``read_when_rendering``
    names, and the groups of keys ``more`` gives (None: a group not known without a round trip)."""
    groups = [keys for keys_for in _READ_WHEN_RENDERING if (keys := keys_for())]
    groups += [keys for keys in more if keys]
    if groups:
        g._get_current_object().setdefault(_READS_AHEAD, []).extend(groups)


def _reads_ahead(keys: list[str]) -> list[list[str]]:
    """The groups of keys to read along with ``keys`` (those waiting for the next read, but a group
    equal to ``keys``: that one is being read now)."""
    if not has_app_context():
        return []
    waiting = g._get_current_object().pop(_READS_AHEAD, None)
    return [group for group in waiting if group != keys] if waiting else []


def _read_earlier(keys: list[str]) -> list[Any] | None:
    if not has_app_context():
        return None
    earlier = g._get_current_object().get(_READ_EARLIER)
    return earlier.pop(tuple(keys), None) if earlier else None


@functools.lru_cache(maxsize=4096)
def memoized_for_user_keys(user_id, topic: str, name: str) -> tuple[str, str]:
    """The keys ``memoize_for_user`` reads, in its order: the topic's version, then the value (made
    once per person, topic and name: every request of a signed-in person reads their account)."""
    return (user_topic_key(user_id, topic), user_key(user_id, name))


def user_version(user_id, topic: str) -> int:
    return _version_of(user_topic_key(user_id, topic))


def global_topic_key(topic: str) -> str:
    """The version key of a topic of the whole system (``g:version:flags``: the feature flags)."""
    return f"g:version:{topic}"


def global_version(topic: str) -> int:
    return _version_of(global_topic_key(topic))


def _version_of(key: str) -> int:
    known = _request_memo()
    if key not in known:
        known[key] = int(_get_many([key])[0] or 0)
    return known[key]


def memoize_for_user(user_id, topic: str, name: str, compute: Callable[[], Any], timeout=DEFAULT_TIMEOUT):
    """The person's cached value for ``name``, computed on a miss; expires when ``topic`` changes.

    The value is stored with the version it was computed at, under a fixed key, so the
    version and the value come back in one round trip.
    """
    version_key, key = memoized_for_user_keys(user_id, topic, name)
    current, stored = _get_many([version_key, key])
    current = _request_memo()[version_key] = int(current or 0)
    if isinstance(stored, tuple) and len(stored) == 2 and stored[0] == current:
        return stored[1]
    # The version was read before the data: a change committed meanwhile moves it again.
    value = compute()
    _set(key, (current, value), timeout)
    return value


def may_store() -> bool:
    """Whether what this request read may be stored in the cache: not when it read a replica.

    A value is stored under the versions read before it was computed, and those versions move
    at the commits the value must show. A streaming replica may not have replayed them yet:
    a page read there could show the data from before an edit, and would then be served under
    the new versions until the next change. So a page view on the replica answers from the
    cache when it can and renders otherwise, but stores nothing; what the primary reads (the
    writer's own page views until the replica has caught up, every request without a replica)
    is stored.
    """
    from app.core.replica import reads_from_replica

    return not reads_from_replica()


def store(key: str, value: Any, timeout=DEFAULT_TIMEOUT) -> None:
    """Keep ``value`` under ``key`` (see ``may_store``); an unreachable cache is only logged.
    While a cached page renders, its parts are kept with the page, in one round trip."""
    store_many({key: value}, timeout)


def store_many(values: dict[str, Any], timeout=DEFAULT_TIMEOUT) -> None:
    """``store`` for several keys in one round trip."""
    if not values or not may_store():
        return
    collected = _collected_stores()
    if collected is not None:
        collected.update((key, (value, timeout)) for key, value in values.items())
        return
    try:
        cache.set_many(values, timeout=timeout)
    except RedisError as exc:
        log.warning("cache unavailable", extra={"error": str(exc)})


_COLLECTED = "cache_collected_stores"


def _collected_stores() -> dict | None:
    return g._get_current_object().get(_COLLECTED) if has_app_context() else None


@contextmanager
def stores_together() -> Iterator[None]:
    """Inside, ``store`` and ``store_many`` collect what they keep; the end of the outermost
    block writes it all in one round trip, each value with its own timeout."""
    request_globals = g._get_current_object()
    if _COLLECTED in request_globals:  # an outer block writes them
        yield
        return
    collected = request_globals.setdefault(_COLLECTED, {})
    try:
        yield
    finally:
        request_globals.pop(_COLLECTED, None)
        _write_collected(collected)


def _write_collected(collected: dict) -> None:
    if not collected:
        return
    backend = _backend()
    prefix = backend._get_prefix()
    try:
        if unapplied_bumps:
            apply_unapplied_bumps()
        pipe = backend._write_client.pipeline(transaction=False)
        for key, (value, timeout) in collected.items():
            seconds = backend._normalize_timeout(timeout)
            dumped = backend.serializer.dumps(value)
            pipe.set(prefix + key, dumped, ex=seconds if seconds > 0 else None)
        pipe.execute()
    except RedisError as exc:
        log.warning("cache unavailable", extra={"error": str(exc)})


def _set(key: str, value: Any, timeout) -> None:
    if not may_store():
        return
    try:
        cache.set(key, value, timeout=timeout)
    except RedisError as exc:
        log.warning("cache unavailable", extra={"error": str(exc)})


def memoize_for_tenant(
    topic: str | tuple, name: str, compute: Callable[[], Any], *parts: Any, timeout=DEFAULT_TIMEOUT
):
    """The tenant's cached value for ``name``, computed on a miss; expires when ``topic`` changes."""
    return _memoized(_memoized_key(versions(topic)[0], name, *parts), compute, timeout)


def _memoized_key(version: int, name: str, *parts: Any) -> str:
    return tenant_key(name, f"v{version}", *parts)


def memoized_for_tenant_keys(topic: str | tuple, name: str, *parts: Any) -> list[str] | None:
    """The key ``memoize_for_tenant`` reads for these arguments, if this request has read the
    topic's version already (None otherwise: naming it would cost a round trip)."""
    version = version_read(topic)
    return None if version is None else [_memoized_key(version, name, *parts)]


def version_read(topic: str | tuple) -> int | None:
    """The topic's version as this request has read it already, or None if it has not."""
    return _request_memo().get(_version_key_in(require_tenant(), topic))


def get(key: str) -> Any:
    """The cached value under ``key`` (None if there is none), read with any reads ahead."""
    return _get_many([key])[0]


def _memoized(key: str, compute: Callable[[], Any], timeout) -> Any:
    value = _get_many([key])[0]
    if value is None:
        value = compute()
        _set(key, value, timeout)
    return value
