"""The one place cache keys are made, and how data changes expire what is cached.

Keys always say whose data they hold:

- ``t:<tenant>:…`` — tenant data; built from the *current* tenant, so a value cached for A
  can only ever be looked up while A is the tenant;
- ``u:<user>:…`` — one person's data across organizations (their switcher);
- ``g:…`` — the same for everybody.

Expiry is key-based: cached values include the versions of the kinds of data (topics) they
show in their key, or are stored with them, and a change bumps a version instead of hunting
down keys to delete. The versions move from the data change itself: each model declares the
topics its rows are shown in (``__cache_topics__``, see ``CacheTopic``), the session collects
the topics of every row inserted, updated or deleted (by a flush or by a bulk statement),
each in the row's own organization, and bumps them after the commit; a rollback forgets
them. What only a query can name (the organizations a renamed person is in) is added by a
function registered with ``also_expires``. Web requests and workers write through the same
sessions, so both expire the same way.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
from flask import g, has_app_context
from flask_caching.backends import RedisCache
from redis.exceptions import RedisError
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import ORMExecuteState, Session

from app.core.tenancy import current_tenant_id, is_tenant_model, is_unscoped, require_tenant
from app.extensions import cache
from app.models.base import CacheTopic

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 300
_PENDING = "worklane_cache_bumps"
_VERSION_TIMEOUT = 7 * 24 * 3600


def tenant_key(name: str, *parts: Any) -> str:
    return _key_in(require_tenant(), name, *parts)


#: An organization's or a person's id as text: a page builds a dozen keys from the same two ids,
#: and ``str`` of a UUID is Python code (``uuid.UUID.__str__``).
_id_text = functools.lru_cache(maxsize=4096)(str)


def _key_in(tenant_id, name: str, *parts: Any) -> str:
    return ":".join(["t", _id_text(tenant_id), name, *map(str, parts)])


def user_key(user_id, name: str, *parts: Any) -> str:
    return ":".join(["u", _id_text(user_id), name, *map(str, parts)])


def _topic_key(topic: str, parts: tuple) -> str:
    return tenant_key("version", ".".join([topic, *map(str, parts)]))


def _version_key(topic: str | tuple) -> str:
    """The version key of a topic given as ``versions`` takes it: a name, or a name with parts."""
    return _topic_key(topic, ()) if isinstance(topic, str) else _topic_key(topic[0], topic[1:])


def versions(*topics: str | tuple, along: str | None = None) -> tuple[int, ...]:
    """The current versions of kinds of the tenant's data (0 until each first changes).

    A topic is a name (``"issues"``) or a name with parts (``("notifications", user_id)``).
    Read with one round trip for all of them, and once per request: later reads in the same
    request answer from memory (a commit forgets what it moved). The value under the key
    ``along``, if given, is read in the same round trip and returned last.
    """
    keys = [_version_key(topic) for topic in topics]
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


class ForgivingRedisCache(RedisCache):
    """Flask-Caching's Redis backend (``CACHE_TYPE``), answering as an empty cache while its Redis
    is unreachable: a read misses and a write is dropped, so every page is rendered from the
    database instead of failing (with the circuit breaker of app/core/redis_breaker.py, without
    waiting either)."""

    def _unreachable(self, exc: RedisError, answer: Any) -> Any:
        log.warning("cache unavailable", extra={"error": str(exc)})
        return answer

    def get(self, key: str) -> Any:
        try:
            return super().get(key)
        except RedisError as exc:
            return self._unreachable(exc, None)

    def get_many(self, *keys: str) -> list[Any]:
        try:
            return super().get_many(*keys)
        except RedisError as exc:
            return self._unreachable(exc, [None] * len(keys))

    def has(self, key: str) -> bool:
        try:
            return super().has(key)
        except RedisError as exc:
            return self._unreachable(exc, False)

    def set(self, key: str, value: Any, timeout: Any = None) -> Any:
        try:
            return super().set(key, value, timeout)
        except RedisError as exc:
            return self._unreachable(exc, False)

    def add(self, key: str, value: Any, timeout: Any = None) -> Any:
        try:
            return super().add(key, value, timeout)
        except RedisError as exc:
            return self._unreachable(exc, False)

    def set_many(self, mapping: dict[str, Any], timeout: Any = None) -> list[Any]:
        try:
            return super().set_many(mapping, timeout)
        except RedisError as exc:
            return self._unreachable(exc, [])

    def delete(self, key: str) -> bool:
        try:
            return super().delete(key)
        except RedisError as exc:
            return self._unreachable(exc, False)

    def delete_many(self, *keys: str) -> list[Any]:
        try:
            return super().delete_many(*keys)
        except RedisError as exc:
            return self._unreachable(exc, [])


def _get_many(keys: list[str]) -> list[Any]:
    read = _read_earlier(keys)
    if read is not None:
        return read
    along = _reads_ahead(keys)
    try:
        if _unapplied_bumps:
            _apply_unapplied_bumps()
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
    if _unapplied_bumps or not has_app_context():
        return None
    backend = cache.cache
    prefix = backend._get_prefix()

    def take(raw_values: list) -> None:
        earlier = g._get_current_object().setdefault(_READ_EARLIER, {})
        values = iter(raw_values)
        for keys in groups:
            earlier[tuple(keys)] = [backend.serializer.loads(next(values)) for _ in keys]

    return [prefix + key for keys in groups for key in keys], take


# --- keys a page rendered anew reads anyway, read with the render's first read ----------------

#: Functions naming keys that a cached page rendered anew reads anyway (see ``read_when_rendering``).
_READ_WHEN_RENDERING: list[Callable[[], list[str] | None]] = []
_READS_AHEAD = "cache_reads_ahead"


def read_when_rendering(keys_for: Callable[[], list[str] | None]) -> None:
    """Register ``keys_for() -> keys or None``: cache keys every page rendered anew reads (the
    layout's), read along with the first read of the cache the render makes (``cached_page``)
    rather than in a round trip of their own. ``keys_for`` must not ask Redis itself."""
    _READ_WHEN_RENDERING.append(keys_for)


def _read_ahead_while_rendering() -> None:
    """The next read of the cache in this request also reads the keys ``read_when_rendering`` names."""
    groups = [keys for keys_for in _READ_WHEN_RENDERING if (keys := keys_for())]
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


def memoized_for_user_keys(user_id, topic: str, name: str) -> list[str]:
    """The keys ``memoize_for_user`` reads, in its order: the topic's version, then the value."""
    return [user_key(user_id, "version", topic), user_key(user_id, name)]


def user_version(user_id, topic: str) -> int:
    key = user_key(user_id, "version", topic)
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
    backend = cache.cache
    prefix = backend._get_prefix()
    try:
        if _unapplied_bumps:
            _apply_unapplied_bumps()
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


def _bump(client, key: str) -> None:
    client.incr(key)
    client.expire(key, _VERSION_TIMEOUT)


#: Version keys whose bump failed because the cache Redis was away. The data is committed, and
#: while Redis is away nothing is served from the cache; but once it is back, pages cached
#: before the change would show the old data. So this process bumps them again before it next
#: reads the cache (or commits). Another process serving a page cached before the change in
#: the moment between can show it once; a process that exits first leaves those pages to
#: expire within their timeout.
_unapplied_bumps: set[str] = set()
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
        room = _MAX_UNAPPLIED - len(_unapplied_bumps)
        keys = sorted(keys)
        _unapplied_bumps.update(keys[: max(room, 0)])
    extra = {"keys": keys[:20], "count": len(keys), "error": str(exc)}
    log.warning("cache versions not bumped yet", extra=extra)


def _apply_unapplied_bumps() -> None:
    """Bump what an outage left unbumped (raises RedisError while the cache Redis is still away)."""
    with _unapplied_lock:
        keys = set(_unapplied_bumps)
        _unapplied_bumps.clear()
    if not keys:
        return
    try:
        _bump_all(keys)
    except RedisError as exc:
        _keep_unapplied(keys, exc)
        raise
    log.info("cache versions bumped after an outage", extra={"count": len(keys)})


@event.listens_for(Session, "after_commit")
def _apply_pending_bumps(session) -> None:
    keys = session.info.pop(_PENDING, set())
    if not keys and not _unapplied_bumps:
        return
    if has_app_context():
        _request_memo().clear()
        g.pop(_READ_EARLIER, None)
    with _unapplied_lock:
        keys = keys | _unapplied_bumps
        _unapplied_bumps.clear()
    try:
        _bump_all(keys)
    except RedisError as exc:
        _keep_unapplied(keys, exc)


@event.listens_for(Session, "after_soft_rollback")
def _forget_pending_bumps(session, previous_transaction) -> None:
    if previous_transaction.parent is None:  # the outermost transaction
        session.info.pop(_PENDING, None)


# --- versions moved by the data change itself ------------------------------------------------

#: Functions adding, for a changed row of a model, keys only a query can name.
_EXPANDERS: dict[type, list[Callable[[Session, Any, frozenset[str] | None], Iterable[str]]]] = {}


def topics_of(model: type) -> tuple[CacheTopic, ...]:
    """The cached topics a model's rows are shown in (its ``__cache_topics__``)."""
    declared = getattr(model, "__cache_topics__", ())
    return tuple(CacheTopic(t) if isinstance(t, str) else t for t in declared)


def also_expires(model: type):
    """Register ``expand(session, row, changed)`` -> keys an updated or deleted row also expires.

    For topics only a query can name (the organizations a person is in); a row being
    inserted is in no such place yet. ``changed`` is the set of attributes that changed, or
    None when unknown (a delete, a bulk statement). Keys are made with ``topic_key_in`` and
    ``user_topic_key``.
    """

    def register(expand):
        _EXPANDERS.setdefault(model, []).append(expand)
        return expand

    return register


def expires_anything(model: type) -> bool:
    """Whether a change to a row of ``model`` moves any cache version."""
    return bool(topics_of(model)) or model in _EXPANDERS


def topic_key_in(tenant_id, topic: str, *parts: Any) -> str:
    """The version key of a tenant's topic, named outside the tenant's context (to move it at a
    commit, or to read it with the session before the tenant is known)."""
    return _key_in(tenant_id, "version", ".".join([topic, *map(str, parts)]))


def user_topic_key(user_id, topic: str) -> str:
    return user_key(user_id, "version", topic)


def _keys_for(model: type, values: Callable[[str], Iterable[Any]]) -> set[str]:
    """The version keys of ``model``'s topics, for a row whose attribute values ``values`` gives."""
    keys = set()
    for topic in topics_of(model):
        if topic.of_user:
            keys.update(user_topic_key(user_id, topic.name) for user_id in values(topic.per))
            continue
        for tenant_id in values("tenant_id"):
            if topic.per is None:
                keys.add(topic_key_in(tenant_id, topic.name))
            else:
                keys.update(topic_key_in(tenant_id, topic.name, part) for part in values(topic.per))
    return keys


def _row_values(obj) -> Callable[[str], list[Any]]:
    """An attribute's values on a row: the current one and, if it changed, the one before."""
    state = inspect(obj)

    def values(name: str) -> list[Any]:
        if name not in state.dict and state.key is not None and not state.was_deleted:
            getattr(obj, name)  # expired: load it (the row still exists)
        history = state.attrs[name].history
        found = [v for v in (*history.added, *history.unchanged, *history.deleted) if v is not None]
        if not found and name == "tenant_id" and state.key is not None:
            found = [_tenant_of_identity(state)]
        return list(dict.fromkeys(found))

    return values


def _tenant_of_identity(state) -> Any:
    columns = state.mapper.primary_key
    return state.key[1][[c.key for c in columns].index("tenant_id")]


def _changed_attributes(obj) -> frozenset[str]:
    state = inspect(obj)
    return frozenset(attr.key for attr in state.attrs if attr.history.has_changes())


def _expand(session: Session, model: type, row, changed: frozenset[str] | None) -> set[str]:
    keys = set()
    for expand in _EXPANDERS.get(model, ()):
        with session.no_autoflush:
            keys.update(expand(session, row, changed))
    return keys


def _add_pending(session: Session, keys: set[str]) -> None:
    if keys:
        session.info.setdefault(_PENDING, set()).update(keys)


@event.listens_for(Session, "before_flush")
def _collect_changed_rows(session: Session, _context, _instances) -> None:
    """Rows about to be updated or deleted: their topics move at commit (their values before
    the flush are still there to read; new rows are read after it, once complete)."""
    keys: set[str] = set()
    for obj in (*session.dirty, *session.deleted):
        model = type(obj)
        if not expires_anything(model):
            continue
        deleted = obj in session.deleted
        if not deleted and not session.is_modified(obj):
            continue
        with session.no_autoflush:
            keys |= _keys_for(model, _row_values(obj))
        keys |= _expand(session, model, obj, None if deleted else _changed_attributes(obj))
    _add_pending(session, keys)


@event.listens_for(Session, "after_flush")
def _collect_new_rows(session: Session, _context) -> None:
    keys: set[str] = set()
    for obj in session.new:
        model = type(obj)
        if expires_anything(model):
            keys |= _keys_for(model, _row_values(obj))
    _add_pending(session, keys)


@event.listens_for(Session, "do_orm_execute")
def _collect_bulk_writes(state: ORMExecuteState) -> None:
    """Bulk INSERT, UPDATE and DELETE statements move their model's topics too.

    An INSERT names its rows in its parameters (a statement's own ``values()`` are not read:
    pass the rows as parameters). An UPDATE or DELETE of a model whose topics
    are the current organization's as a whole needs nothing more; one whose topics are per
    person (or that runs unscoped, or has an ``also_expires`` function) first reads which
    rows it is about to change, with the statement's own criteria.
    """
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    mapper = state.bind_mapper
    model = mapper.class_ if mapper is not None else None
    if model is None or not expires_anything(model):
        return
    session = state.session
    if state.is_insert:
        rows = state.parameters if isinstance(state.parameters, list) else [state.parameters or {}]
        tenant = current_tenant_id()
        keys = set()
        for row in rows:
            values = dict(row)
            if is_tenant_model(model):
                values.setdefault("tenant_id", tenant)
            keys |= _keys_for(model, lambda name, v=values: [v[name]] if v.get(name) is not None else [])
        _add_pending(session, keys)
        return
    topics = topics_of(model)
    tenant = None if is_unscoped() else current_tenant_id()
    simple = all(t.per is None and not t.of_user for t in topics) and model not in _EXPANDERS
    if simple and tenant is not None and is_tenant_model(model):
        _add_pending(session, {topic_key_in(tenant, t.name) for t in topics})
        return
    where = state.statement.whereclause
    keys = set()
    with session.no_autoflush:
        if model in _EXPANDERS:
            affected = select(model) if where is None else select(model).where(where)
            for obj in session.scalars(affected).unique():
                keys |= _keys_for(model, _row_values(obj))
                keys |= _expand(session, model, obj, None)
        else:
            names = {"tenant_id"} if is_tenant_model(model) else set()
            names = sorted(names | {t.per for t in topics if t.per})
            affected = select(*(getattr(model, name) for name in names)).distinct()
            for row in session.execute(affected if where is None else affected.where(where)).mappings():
                keys |= _keys_for(model, lambda name, r=row: [r[name]] if r[name] is not None else [])
    _add_pending(session, keys)


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
    version = _request_memo().get(_version_key(topic))
    return None if version is None else [_memoized_key(version, name, *parts)]


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


#: Who is viewing this request (a user id, or None): the accounts feature registers it with
#: ``viewer_from``. Until then no page is cached.
_VIEWER: dict[str, Callable[[], Any]] = {"find": lambda: None}


def viewer_from(find: Callable[[], Any]) -> None:
    """Register the function that names this request's viewer (their user id, or None)."""
    _VIEWER["find"] = find


#: Where a request keeps the digest of its URL for ``page_key`` (asked for twice a request).
_URL_DIGEST = "worklane.page_url_digest"


def page_key(tenant_id, name: str, user_id, request) -> str:
    """The key of a person's cached page ``name`` at the request's exact URL (and htmx or not)."""
    environ = request.environ
    digest = environ.get(_URL_DIGEST)
    if digest is None:
        url = f"{request.full_path}|{environ.get('HTTP_HX_REQUEST', '')}"
        digest = environ[_URL_DIGEST] = hashlib.sha256(url.encode()).hexdigest()[:24]
    return _key_in(tenant_id, "page", name, user_id, digest)


#: The cached page each path showed last in this process: (tenant, name, topics, member topics),
#: so that the next request for it can read the page with the session (``page_keys_for``).
_PAGES: dict[str, tuple[Any, str, tuple, tuple]] = {}
_MAX_PAGES = 10_000


def remember_page(path: str, tenant_id, name: str, topics: tuple, member_topics=_MEMBER_TOPICS) -> None:
    """Note that ``path`` showed the cached page ``name``, read with ``versions(*topics, *((t, user)
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
    found = versions(*_page_topics(topics, member_topics, user_id), along=along)
    numbers, stored = (found[:-1], found[-1]) if along is not None else (found, None)
    return (*numbers, user_version(user_id, "account")), stored


def page_keys_for(request, user_id) -> list[str] | None:
    """The keys a cached page reads for this request of ``user_id`` (the versions of what the
    page shows, then the page), if this path last showed a cached page: a guess, taken only when
    the page asks for exactly these keys (same organization, person, page and topics)."""
    page = _PAGES.get(request.path)
    if page is None:
        return None
    tenant_id, name, topics, member_topics = page
    keys = [
        topic_key_in(tenant_id, t) if isinstance(t, str) else topic_key_in(tenant_id, *t)
        for t in _page_topics(topics, member_topics, user_id)
    ]
    return [*keys, page_key(tenant_id, name, user_id, request)]


def cached_page(
    name: str,
    render: Callable[..., str],
    *topics: str,
    timeout=DEFAULT_TIMEOUT,
    shown: Callable[[], Any] | None = None,
):
    """A member's whole page, served from the cache until anything it shows changes.

    The page depends on the versions of ``topics`` (the tenant data on the page), the
    member's own topics (unread count, saved views) and the version of their account (their
    name, organizations and role, in the layout). It is stored under a key of the tenant, the
    member and the exact URL, together with the versions it was rendered at, so the page and
    the current versions come back in one round trip. The CSRF token is stored as a
    placeholder and filled in per response; the page is also kept gzipped, with the token
    spliced in per response (``app.core.compression.precompress``). A page with a flash message
    to show is rendered, not cached.

    With ``shown`` (a function that reads what the page shows from ``topics``, as plain values,
    without rendering), ``render`` is given what it read. After ``topics`` moved (an edit
    anywhere in the organization), a page whose stored copy was made from the same values, with
    the member's own versions and account unchanged, is the same page: it is stored again under
    the new versions, neither rendered nor compressed again.
    """
    from flask import request, session
    from flask_wtf.csrf import generate_csrf

    from app.core.compression import precompress, token_page

    user_id = _VIEWER["find"]()
    if user_id is None or session._get_current_object().get("_flashes"):
        return render() if shown is None else render(shown())
    tenant_id = require_tenant()
    request = request._get_current_object()
    remember_page(request.path, tenant_id, name, topics)
    key = page_key(tenant_id, name, user_id, request)
    current, stored = page_versions(topics, _MEMBER_TOPICS, user_id, along=key)
    if not (isinstance(stored, tuple) and len(stored) == 4):
        stored = None
    elif stored[0] == current:
        return token_page(stored[1], CSRF_PLACEHOLDER, stored[2], generate_csrf())
    # The versions were read before the data: a change committed meanwhile moves them again.
    _read_ahead_while_rendering()
    with stores_together():  # what rendering keeps (list rows, search results), with the page
        token = generate_csrf()
        values = digest = None
        if shown is not None:
            values = shown()
            digest = hashlib.blake2b(msgspec.msgpack.encode(values), digest_size=16).digest()
        own = len(topics)  # the member's own versions and the account's follow the page's topics
        same = stored is not None and digest is not None and stored[3] == digest
        if same and stored[0][own:] == current[own:]:
            html, compressed = stored[1], stored[2]
        else:
            html = str(render() if shown is None else render(values)).replace(token, CSRF_PLACEHOLDER)
            compressed = precompress(html, CSRF_PLACEHOLDER)
        store(key, (current, html, compressed, digest), timeout)
    return token_page(html, CSRF_PLACEHOLDER, compressed, token)
