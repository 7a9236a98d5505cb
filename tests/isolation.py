"""The isolation harness's machinery: it discovers what to check by itself.

Every tenant model in the SQLAlchemy registry and every tenant route in the URL map is
checked; a model or route added later is covered without editing the harness. The checks
are plain functions returning a list of problems, so the harness's own tests can feed
them deliberately broken models and routes and see them fail.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapper

from app.extensions import db
from app.models.base import utcnow
from app.tenancy import is_tenant_model

#: Tables that name an organization without being owned by one.
GLOBAL_TABLES_REFERRING_TO_ORGANIZATIONS: set[str] = set()


def all_mappers(registry=None) -> list[Mapper]:
    registry = registry or db.Model.registry
    return sorted(registry.mappers, key=lambda m: m.class_.__name__)


def tenant_models(registry=None) -> list[type]:
    return [m.class_ for m in all_mappers(registry) if is_tenant_model(m.class_)]


# --- static checks on the schema ------------------------------------------------------


def unmarked_tenant_tables(mappers: list[Mapper]) -> list[str]:
    """Models that hold tenant data (a tenant_id column or a link to organizations)
    without the TenantMixin, so nothing scopes them."""
    problems = []
    for mapper in mappers:
        cls = mapper.class_
        if is_tenant_model(cls):
            continue
        table = mapper.local_table
        refers = any(fk.column.table.name == "organizations" for fk in table.foreign_keys)
        if "tenant_id" in table.c or (refers and table.name not in GLOBAL_TABLES_REFERRING_TO_ORGANIZATIONS):
            problems.append(f"{cls.__name__} ({table.name}) holds tenant data but is not a TenantMixin model")
    return problems


def key_problems(models: list[type]) -> list[str]:
    """Keys ready for distribution by tenant: tenant_id in the primary key, every unique
    constraint and index, and both ends of every foreign key between tenant tables."""
    tenant_table_names = {m.__table__.name for m in models}
    problems = []
    for model in models:
        table = model.__table__
        name = table.name
        pk = [c.name for c in table.primary_key.columns]
        if not pk or pk[0] != "tenant_id":
            problems.append(f"{name}: primary key {pk} must start with tenant_id")
        for constraint in table.constraints:
            if isinstance(constraint, UniqueConstraint) and "tenant_id" not in constraint.columns:
                problems.append(f"{name}: unique constraint {constraint.name} lacks tenant_id")
            if isinstance(constraint, ForeignKeyConstraint):
                remote = constraint.referred_table.name
                if remote in tenant_table_names:
                    local_cols = [c.name for c in constraint.columns]
                    remote_cols = [e.column.name for e in constraint.elements]
                    if "tenant_id" not in local_cols or "tenant_id" not in remote_cols:
                        problems.append(
                            f"{name}: foreign key to {remote} must include tenant_id at both ends"
                        )
        for column in table.columns:
            if column.unique:
                problems.append(f"{name}.{column.name}: unique=True without tenant_id")
        for index in table.indexes:
            if index.unique and "tenant_id" not in index.columns:
                problems.append(f"{name}: unique index {index.name} lacks tenant_id")
    return problems


# --- building rows ----------------------------------------------------------------------


def _value_for(column, serial: int):
    type_ = column.type
    if isinstance(type_, Uuid):
        return uuid.uuid4()
    if isinstance(type_, String | Text):
        length = getattr(type_, "length", None) or 40
        return f"v{serial}-{uuid.uuid4().hex}"[: max(1, min(length, 40))]
    if isinstance(type_, Boolean):
        return False
    if isinstance(type_, Integer):
        return serial
    if isinstance(type_, Numeric | Float):
        return 1
    if isinstance(type_, DateTime):
        return utcnow() + timedelta(days=30)
    if isinstance(type_, Date):
        return date.today()
    if isinstance(type_, JSON):
        return {}
    impl = getattr(type_, "impl", None)
    if impl is not None and isinstance(impl, DateTime):
        return utcnow() + timedelta(days=30)
    raise NotImplementedError(f"no generic value for {column} of type {type_!r}")


class RowBuilder:
    """Creates a valid row of any model, with its parents, in the current session."""

    def __init__(self, session):
        self.session = session
        self.serial = 0

    def new_user(self):
        from app.models import User

        user = User(email=f"u{uuid.uuid4().hex[:12]}@example.com", name="Someone", password_hash="!")
        self.session.add(user)
        self.session.flush()
        return user

    def build(self, model: type, tenant_id: uuid.UUID, **values):
        self.serial += 1
        table = model.__table__
        row = {}
        fk_columns = {}
        for constraint in table.foreign_key_constraints:
            target = constraint.referred_table.name
            local = [c.name for c in constraint.columns if c.name != "tenant_id"]
            if not local:
                continue
            if target == "users":
                parent = self.new_user()
                for col, element in zip(constraint.columns, constraint.elements, strict=True):
                    fk_columns[col.name] = getattr(parent, element.column.name)
            elif target == "organizations":
                continue
            else:
                parent_model = next(m for m in tenant_models() if m.__table__.name == target)
                parent = self.build(parent_model, tenant_id)
                for col, element in zip(constraint.columns, constraint.elements, strict=True):
                    fk_columns[col.name] = getattr(parent, element.column.name)
        for column in table.columns:
            if column.name in values or column.name == "tenant_id":
                continue
            if column.name in fk_columns:
                row[column.name] = fk_columns[column.name]
            elif column.primary_key and column.default is not None:
                continue
            elif not column.nullable and column.default is None and column.server_default is None:
                row[column.name] = _value_for(column, self.serial)
        row.update(values)
        obj = model(tenant_id=tenant_id, **row)
        self.session.add(obj)
        self.session.flush()
        return obj


def sample_string_column(model: type):
    """A plain string column a bulk UPDATE can change (not a key, not a foreign key)."""
    for column in model.__table__.columns:
        if column.primary_key or column.foreign_keys:
            continue
        if isinstance(column.type, String | Text) and column.name != "tenant_id":
            return column
    return None
