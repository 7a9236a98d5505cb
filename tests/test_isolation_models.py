"""The isolation harness, model level: every tenant model, found in the registry, is scoped."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import (
    Column,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
    and_,
    delete,
    func,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.orm import DeclarativeBase, aliased

from app.core.tenancy import (
    TenantMixin,
    TenantNotSet,
    TenantViolation,
    current_tenant_id,
    is_tenant_model,
    tenant_context,
    unscoped,
)
from app.models import Organization
from tests.isolation import (
    RowBuilder,
    all_mappers,
    changed_marker,
    key_problems,
    sample_string_column,
    tenant_models,
    unmarked_tenant_tables,
)

TENANT_MODELS = tenant_models()


def test_registry_has_tenant_models():
    """The harness found the tenant models (it is not vacuously green)."""
    names = {m.__name__ for m in TENANT_MODELS}
    assert {"Membership", "Invitation", "AuditEvent"} <= names


def test_no_tenant_data_outside_the_mixin():
    """No model holds tenant data (tenant_id, link to organizations) without being scoped."""
    assert unmarked_tenant_tables(all_mappers()) == []


def test_keys_include_tenant_id():
    """Primary keys, unique constraints and tenant-to-tenant foreign keys all include tenant_id."""
    assert key_problems(TENANT_MODELS) == []


@pytest.fixture
def two_tenants(app, db_session):
    """Organizations A and B and one row of every tenant model in each (inside an app context, as
    encrypted columns read their keys from the app)."""
    with app.app_context():
        org_a = Organization(slug=f"a-{uuid.uuid4().hex[:8]}", name="A")
        org_b = Organization(slug=f"b-{uuid.uuid4().hex[:8]}", name="B")
        db_session.add_all([org_a, org_b])
        db_session.flush()
        builder = RowBuilder(db_session)
        rows = {}
        for model in TENANT_MODELS:
            for org in (org_a, org_b):
                with tenant_context(org.id):
                    rows[(model, org.slug)] = inspect(builder.build(model, org.id)).identity
        db_session.commit()
        with unscoped("test setup"):
            orgs = (db_session.get(Organization, org_a.id), db_session.get(Organization, org_b.id))
        yield orgs[0], orgs[1], rows


def _one_per_tenant(model) -> bool:
    """Whether the model keeps at most one row per organization (a unique key of tenant_id alone)."""
    return any(
        isinstance(constraint, UniqueConstraint) and [c.name for c in constraint.columns] == ["tenant_id"]
        for constraint in model.__table__.constraints
    )


def _count_unscoped(session, model, tenant_id) -> int:
    with unscoped("test check"):
        return session.scalar(select(func.count()).select_from(model).where(model.tenant_id == tenant_id))


@pytest.mark.parametrize("model", TENANT_MODELS, ids=lambda m: m.__name__)
def test_select_get_and_alias_see_only_the_current_tenant(db_session, two_tenants, model):
    """As A: select, aliased select and get by id return only A's rows."""
    org_a, org_b, rows = two_tenants
    b_identity = rows[(model, org_b.slug)]
    with tenant_context(org_a.id):
        found = db_session.scalars(select(model)).all()
        assert found and {r.tenant_id for r in found} == {org_a.id}
        alias = aliased(model)
        assert {r.tenant_id for r in db_session.scalars(select(alias))} == {org_a.id}
        db_session.expunge_all()
        if "id" in model.__table__.c:
            assert model.get_scoped(db_session, b_identity[-1]) is None  # the id ends the identity
        assert db_session.get(model, b_identity) is None
        keys = [c.key for c in model.__table__.primary_key.columns if c.key != "tenant_id"]
        joined = select(model).join(alias, and_(*(getattr(alias, k) == getattr(model, k) for k in keys)))
        assert {r.tenant_id for r in db_session.scalars(joined)} == {org_a.id}


@pytest.mark.parametrize("model", TENANT_MODELS, ids=lambda m: m.__name__)
def test_bulk_update_and_delete_touch_only_the_current_tenant(db_session, two_tenants, model):
    """As A: an unfiltered bulk UPDATE and DELETE leave B's rows alone."""
    org_a, org_b, _ = two_tenants
    column = sample_string_column(model)
    if column is not None:  # association tables hold only keys: nothing to update
        marker = changed_marker(column)
        with tenant_context(org_a.id):
            db_session.execute(update(model).values({column.name: marker}))
            assert set(db_session.scalars(select(getattr(model, column.name)))) == {marker}
        with tenant_context(org_b.id):
            assert marker not in set(db_session.scalars(select(getattr(model, column.name))))
    b_rows = _count_unscoped(db_session, model, org_b.id)
    assert b_rows >= 1
    with tenant_context(org_a.id):
        # Rows a foreign key without ON DELETE keeps from going (a state its issues are in) go first.
        for referring in TENANT_MODELS:
            if any(
                fk.referred_table is model.__table__ and fk.ondelete is None
                for fk in referring.__table__.foreign_key_constraints
            ):
                db_session.execute(delete(referring))
        db_session.execute(delete(model))
    assert _count_unscoped(db_session, model, org_a.id) == 0
    assert _count_unscoped(db_session, model, org_b.id) == b_rows


def test_relationships_into_tenant_models_exist():
    """The relationship check below has relationships to walk."""
    assert any(is_tenant_model(rel.mapper.class_) for m in all_mappers() for rel in m.relationships)


@pytest.mark.parametrize("model", TENANT_MODELS, ids=lambda m: m.__name__)
def test_relationship_loads_stay_in_the_tenant(db_session, two_tenants, model):
    """Every relationship into this model, lazy or eager, loads only the current tenant's rows."""
    org_a, _, _ = two_tenants
    for mapper in all_mappers():
        for rel in mapper.relationships:
            if rel.mapper.class_ is not model:
                continue
            with tenant_context(org_a.id):
                for parent in db_session.scalars(select(mapper.class_)).unique():
                    loaded = getattr(parent, rel.key)
                    items = loaded if isinstance(loaded, list) else [loaded] if loaded else []
                    assert all(item.tenant_id == org_a.id for item in items), rel


@pytest.mark.parametrize("model", TENANT_MODELS, ids=lambda m: m.__name__)
def test_no_tenant_fails_closed(db_session, two_tenants, model):
    """With no tenant set, querying a tenant model raises instead of returning everything."""
    assert current_tenant_id() is None
    with pytest.raises(TenantNotSet):
        db_session.scalars(select(model)).all()
    with pytest.raises(TenantNotSet):
        db_session.execute(delete(model))


@pytest.mark.parametrize("model", TENANT_MODELS, ids=lambda m: m.__name__)
def test_tenant_id_is_stamped_and_immutable(db_session, two_tenants, model):
    """Inserts get the current tenant; changing tenant_id or writing B's row as A raises."""
    org_a, org_b, _rows = two_tenants
    builder = RowBuilder(db_session)
    with tenant_context(org_a.id):
        if _one_per_tenant(model):
            db_session.execute(delete(model))  # A's second row would break the one-per-organization key
        row = builder.build(model, None)
        assert row.tenant_id == org_a.id
        row.tenant_id = org_b.id
        with pytest.raises(TenantViolation):
            db_session.flush()
        db_session.rollback()
    column = sample_string_column(model)
    if column is None:
        return  # association tables hold only keys: nothing to write
    with tenant_context(org_b.id):
        b_row = db_session.scalars(select(model).where(model.tenant_id == org_b.id)).first()
        getattr(b_row, column.name)
    with tenant_context(org_a.id):
        setattr(b_row, column.name, changed_marker(column))
        with pytest.raises(TenantViolation):
            db_session.flush()
        db_session.rollback()


@pytest.mark.postgres_only
@pytest.mark.parametrize("model", TENANT_MODELS, ids=lambda m: m.__name__)
def test_row_level_security_is_the_second_wall(db_session, two_tenants, model):
    """Raw SQL on the app's connection sees only the current tenant's rows, and none with no tenant."""
    org_a, _, _ = two_tenants
    table = model.__table__.name
    raw = text(f"SELECT DISTINCT tenant_id FROM {table}")
    with tenant_context(org_a.id):
        assert {r[0] for r in db_session.execute(raw)} == {org_a.id}
    assert db_session.execute(raw).all() == []
    with unscoped("test check"):
        assert len(db_session.execute(raw).all()) == 2


@pytest.mark.postgres_only
def test_every_tenant_table_forces_rls(db_session):
    """Every tenant table has row-level security enabled and forced, with a policy."""
    result = db_session.execute(
        text(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
            "(SELECT count(*) FROM pg_policies p WHERE p.tablename = c.relname) "
            "FROM pg_class c WHERE c.relname = ANY(:names)"
        ),
        {"names": [m.__table__.name for m in TENANT_MODELS]},
    ).all()
    assert len(result) == len(TENANT_MODELS)
    for name, enabled, forced, policies in result:
        assert (enabled, forced, policies >= 1) == (True, True, True), name


@pytest.mark.postgres_only
def test_app_role_cannot_bypass_rls(db_session):
    """The app connects as a role that owns no table and has no BYPASSRLS."""
    role = db_session.execute(
        text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
    ).one()
    assert tuple(role) == (False, False)
    owned = db_session.scalar(
        text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user")
    )
    assert owned == 0


# --- the harness's own tests: it fails for deliberately broken models --------------------


class _Scratch(DeclarativeBase):
    pass


class ScratchOrganization(_Scratch):
    __tablename__ = "organizations"
    id = Column(Uuid, primary_key=True)


class LeakyNote(_Scratch):
    """Tenant data without the mixin: nothing would scope it."""

    __tablename__ = "leaky_notes"
    id = Column(Integer, primary_key=True)
    tenant_id = Column(Uuid, nullable=False)
    body = Column(String(100))


class BadlyKeyedNote(TenantMixin, _Scratch):
    """A tenant model whose id alone is unique and whose foreign key skips tenant_id."""

    __tablename__ = "badly_keyed_notes"
    id = Column(Uuid, primary_key=True)
    slug = Column(String(20), unique=True)
    parent_id = Column(Uuid, ForeignKey("memberships_copy.id"))


class MembershipCopy(TenantMixin, _Scratch):
    __tablename__ = "memberships_copy"
    id = Column(Uuid, primary_key=True)


def test_harness_catches_an_unscoped_model():
    """A model with tenant_id but without TenantMixin is reported."""
    problems = unmarked_tenant_tables([inspect(LeakyNote)])
    assert problems and "LeakyNote" in problems[0]


def test_harness_catches_bad_keys():
    """A tenant model with a global unique column and a tenant-blind foreign key is reported."""
    problems = key_problems([BadlyKeyedNote, MembershipCopy])
    assert any("unique=True" in p for p in problems)
    assert any("foreign key to memberships_copy" in p for p in problems)
