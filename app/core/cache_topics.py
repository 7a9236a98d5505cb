"""How data changes move cache versions: each model declares the topics its rows are shown in
(``__cache_topics__``, see ``CacheTopic``), the session collects the topics of every row inserted,
updated or deleted (by a flush or by a bulk statement), each in the row's own organization, and
bumps them after the commit; a rollback forgets them. What only a query can name (the
organizations a renamed person is in) is added by a function registered with ``also_expires``.

Importing this module registers its SQLAlchemy session listeners (once per process: the app
factory imports it, as does everything that registers an ``also_expires`` function).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import ORMExecuteState, Session

from app.core import cache
from app.core.cache_bumps import bump_versions, unapplied_bumps
from app.core.tenancy import current_tenant_id, is_tenant_model, is_unscoped
from app.models.base import CacheTopic

_PENDING = "worklane_cache_bumps"


@event.listens_for(Session, "after_commit")
def _apply_pending_bumps(session) -> None:
    keys = session.info.pop(_PENDING, set())
    if not keys and not unapplied_bumps:
        return
    cache.forget_versions_read()
    bump_versions(keys)


@event.listens_for(Session, "after_soft_rollback")
def _forget_pending_bumps(session, previous_transaction) -> None:
    if previous_transaction.parent is None:  # the outermost transaction
        session.info.pop(_PENDING, None)


#: Functions adding, for a changed row of a model, keys only a query can name.
_EXPANDERS: dict[type, list[Callable[[Session, Any, frozenset[str] | None], Iterable[str]]]] = {}


def expire_at_commit(session: Session, keys: Iterable[str]) -> None:
    """Move the versions ``keys`` names when this session's transaction commits (global topics,
    which no row's ``__cache_topics__`` names: ``cache.global_topic_key``)."""
    _add_pending(session, set(keys))


def topics_of(model: type) -> tuple[CacheTopic, ...]:
    """The cached topics a model's rows are shown in (its ``__cache_topics__``)."""
    declared = getattr(model, "__cache_topics__", ())
    return tuple(CacheTopic(t) if isinstance(t, str) else t for t in declared)


def also_expires(model: type):
    """Register ``expand(session, row, changed)`` -> keys an updated or deleted row also expires.

    For topics only a query can name (the organizations a person is in); a row being
    inserted is in no such place yet. ``changed`` is the set of attributes that changed, or
    None when unknown (a delete, a bulk statement). Keys are made with ``cache.topic_key_in`` and
    ``cache.user_topic_key``.
    """

    def register(expand):
        _EXPANDERS.setdefault(model, []).append(expand)
        return expand

    return register


def expires_anything(model: type) -> bool:
    """Whether a change to a row of ``model`` moves any cache version."""
    return bool(topics_of(model)) or model in _EXPANDERS


def _keys_for(model: type, values: Callable[[str], Iterable[Any]]) -> set[str]:
    """The version keys of ``model``'s topics, for a row whose attribute values ``values`` gives."""
    keys = set()
    for topic in topics_of(model):
        if topic.of_user:
            keys.update(cache.user_topic_key(user_id, topic.name) for user_id in values(topic.per))
            continue
        for tenant_id in values("tenant_id"):
            if topic.per is None:
                keys.add(cache.topic_key_in(tenant_id, topic.name))
            else:
                keys.update(cache.topic_key_in(tenant_id, topic.name, part) for part in values(topic.per))
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
        _add_pending(session, {cache.topic_key_in(tenant, t.name) for t in topics})
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
