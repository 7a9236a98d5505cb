"""Row-level tenant isolation, enforced by the ORM (and by PostgreSQL RLS, see migrations).

- ``TenantMixin`` marks a tenant-owned model: ``tenant_id`` leads its primary key.
  ``TenantOrSystemMixin`` marks the one kind of row that may also belong to no organization
  (background work of the system itself): ``tenant_id`` is NULL on those rows, which only
  operator and system code reaches, inside ``unscoped``.
- The current tenant is a context variable, set per request after the membership check
  (``app.orgs``) and per job, always reset afterwards (``tenant_context``).
- Every ORM SELECT, UPDATE and DELETE that touches a tenant model gets
  ``tenant_id = <current tenant>`` added, including relationship and lazy loads and aliased
  joins; with no tenant set it raises ``TenantNotSet`` instead of returning everything.
- Flushes stamp ``tenant_id`` on new rows and refuse any change of it, or any write to a row
  of another tenant.
- ``unscoped(reason)`` is the one escape hatch, for operator and maintenance code and for the
  few cross-tenant lookups a user is entitled to (their own memberships). Grep for it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import ForeignKey, event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import (
    Mapped,
    ORMExecuteState,
    Session,
    declared_attr,
    mapped_column,
    with_loader_criteria,
)

log = logging.getLogger(__name__)

_current_tenant: ContextVar[uuid.UUID | None] = ContextVar("worklane_tenant", default=None)
_unscoped_reason: ContextVar[str | None] = ContextVar("worklane_unscoped", default=None)

#: PostgreSQL settings the row-level-security policies read (set per transaction).
RLS_TENANT_SETTING = "app.tenant_id"
RLS_UNSCOPED_SETTING = "app.unscoped"


class TenantNotSet(RuntimeError):
    """A tenant-owned table was queried or written with no current tenant."""


class TenantViolation(RuntimeError):
    """A write would move a row between tenants or touch another tenant's row."""


class TenantMixin:
    """A tenant-owned model: ``tenant_id`` is part of its primary key and of its keys."""

    @declared_attr
    def tenant_id(cls) -> Mapped[uuid.UUID]:
        return mapped_column(
            ForeignKey("organizations.id", ondelete="CASCADE"),
            primary_key=True,
            sort_order=-10,
        )

    @classmethod
    def get_scoped(cls, session, object_id):
        """Load one row by id in the current tenant (None when it is not there).

        The identity key is ``(tenant_id, id)``, so the identity map can never hand out
        another tenant's object for the same id.
        """
        try:
            object_id = uuid.UUID(str(object_id))
        except ValueError:
            return None
        return session.get(cls, (require_tenant(), object_id))


class TenantOrSystemMixin(TenantMixin):
    """A tenant-owned model whose rows may also belong to no organization (the system's own).

    An organization's rows are scoped like every tenant model's. A system row has a NULL
    ``tenant_id``: with no tenant set, queries raise ``TenantNotSet`` as for any tenant model,
    so operator and system code works on system rows inside ``unscoped``, where a new row
    with no tenant stays the system's and ``get_scoped`` finds only system rows.
    ``tenant_id`` being nullable, it cannot be in the primary key: the key is ``id``, and
    ``get_scoped`` checks the owner.
    """

    system_rows = True

    @declared_attr
    def tenant_id(cls) -> Mapped[uuid.UUID | None]:
        return mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), sort_order=-10)

    @classmethod
    def get_scoped(cls, session, object_id):
        """Load one row by id if it is the current tenant's (with no tenant, unscoped: the system's)."""
        try:
            object_id = uuid.UUID(str(object_id))
        except ValueError:
            return None
        row = session.get(cls, object_id)
        return row if row is not None and row.tenant_id == _current_tenant.get() else None


def has_system_rows(cls) -> bool:
    return getattr(cls, "system_rows", False)


def current_tenant_id() -> uuid.UUID | None:
    return _current_tenant.get()


def require_tenant() -> uuid.UUID:
    tenant_id = _current_tenant.get()
    if tenant_id is None:
        raise TenantNotSet("no current tenant: set one with tenant_context() or use unscoped()")
    return tenant_id


def is_unscoped() -> bool:
    return _unscoped_reason.get() is not None


def unscoped_reason() -> str | None:
    """Why the running code is unscoped (the reason given to ``unscoped``), or None."""
    return _unscoped_reason.get()


@contextmanager
def tenant_context(tenant_id: uuid.UUID | str | None) -> Iterator[None]:
    """Run a block as the given tenant, restoring the previous one afterwards."""
    value = uuid.UUID(str(tenant_id)) if tenant_id is not None else None
    token = _current_tenant.set(value)
    try:
        yield
    finally:
        _current_tenant.reset(token)


def set_request_tenant(tenant_id: uuid.UUID) -> None:
    """Set the tenant for the rest of this request (``reset_request_tenant`` ends it)."""
    from flask import g

    g._tenant_token = _current_tenant.set(tenant_id)


def reset_request_tenant(exc=None) -> None:
    from flask import g

    token = g.pop("_tenant_token", None)
    if token is not None:
        _current_tenant.reset(token)
    else:
        _current_tenant.set(None)


@contextmanager
def unscoped(reason: str) -> Iterator[None]:
    """THE escape hatch: no tenant criteria inside this block. Say why."""
    if not reason:
        raise ValueError("unscoped() needs a reason")
    token = _unscoped_reason.set(reason)
    try:
        yield
    finally:
        _unscoped_reason.reset(token)


def is_tenant_model(cls) -> bool:
    return isinstance(cls, type) and issubclass(cls, TenantMixin)


# --- reads: automatic criteria ---------------------------------------------------------


@event.listens_for(Session, "do_orm_execute")
def _scope_statement(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if is_unscoped():
        return
    tenant_id = _current_tenant.get()
    if tenant_id is None:
        if any(is_tenant_model(mapper.class_) for mapper in state.all_mappers):
            raise TenantNotSet("tenant-owned rows queried with no current tenant")
        # A non-tenant query may still reach tenant rows through eager loads: none match.
        criteria = lambda cls: cls.tenant_id.is_(None)  # noqa: E731
    else:
        criteria = lambda cls: cls.tenant_id == tenant_id  # noqa: E731
    state.statement = state.statement.options(
        with_loader_criteria(TenantMixin, criteria, include_aliases=True, propagate_to_loaders=True)
    )


# --- writes: stamping and immutability -------------------------------------------------


@event.listens_for(Session, "before_flush")
def _guard_tenant_writes(session: Session, flush_context, instances) -> None:
    tenant_id = _current_tenant.get()
    for obj in session.new:
        if not is_tenant_model(type(obj)):
            continue
        if obj.tenant_id is None:
            if tenant_id is None:
                if has_system_rows(type(obj)) and is_unscoped():
                    continue  # the system's own row
                raise TenantNotSet(f"cannot insert {type(obj).__name__} with no current tenant")
            obj.tenant_id = tenant_id
        elif tenant_id is not None and obj.tenant_id != tenant_id and not is_unscoped():
            raise TenantViolation(f"{type(obj).__name__} belongs to another tenant than the current one")
    for obj in list(session.dirty) + list(session.deleted):
        if not is_tenant_model(type(obj)):
            continue
        history = inspect(obj).attrs.tenant_id.history
        if history.deleted and history.deleted[0] is not None and history.added:
            raise TenantViolation(f"tenant_id of {type(obj).__name__} cannot change")
        if not is_unscoped():
            if tenant_id is None:
                raise TenantNotSet(f"cannot write {type(obj).__name__} with no current tenant")
            if obj.tenant_id != tenant_id:
                raise TenantViolation(f"{type(obj).__name__} belongs to another tenant")


# --- PostgreSQL: tell the row-level-security policies who we are -----------------------


_TRANSACTION_CONTROL = ("ROLLBACK", "RELEASE", "SAVEPOINT", "COMMIT", "BEGIN")


@event.listens_for(Engine, "before_cursor_execute")
def _set_rls_settings(conn, cursor, statement, parameters, context, executemany):
    """Before each statement, make the transaction's RLS settings match the context.

    The settings are transaction-local (``set_config(…, true)``): they end with the
    transaction, which keeps them correct behind PgBouncer in transaction mode.
    """
    if conn.dialect.name != "postgresql" or statement.lstrip()[:9].upper().startswith(_TRANSACTION_CONTROL):
        return
    wanted = (str(_current_tenant.get() or ""), "on" if is_unscoped() else "off")
    if conn.info.get("worklane_rls") == wanted:
        return
    cursor.execute(
        "SELECT set_config(%s, %s, true), set_config(%s, %s, true)",
        (RLS_TENANT_SETTING, wanted[0], RLS_UNSCOPED_SETTING, wanted[1]),
    )
    conn.info["worklane_rls"] = wanted


@event.listens_for(Engine, "commit")
@event.listens_for(Engine, "rollback")
@event.listens_for(Engine, "rollback_savepoint")
def _forget_rls_settings(conn, *args):
    # Transaction-local settings end with the transaction (or the savepoint they were
    # made in); the next statement sets them again. A connection cut under its transaction
    # is being discarded (its info goes with it): asking it for its info would fail the rollback.
    if not conn.invalidated:
        conn.info.pop("worklane_rls", None)
