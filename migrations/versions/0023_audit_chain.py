"""The audit log becomes a hash chain per organization, with signed checkpoints and a retention.

``audit_events`` gains the entry's place in its organization's chain (``sequence``), the hash of
the entry before it (``prev_hash``) and its own (``hash``), and snapshots of the actor's name and
email and of the target's label. ``actor_id`` loses its foreign key: an entry keeps the id of a
person deleted since (ON DELETE SET NULL would change a hashed field). Existing entries are
chained in the order they were written (``created_at``, then id), their actor's current name and
email copied in. ``audit_checkpoints`` is a new tenant table (row-level security on PostgreSQL),
and ``organizations.audit_retention_days`` (365) says how long entries are kept.

The hash is computed as ``app.core.audit_chain.canonical_entry`` does at this revision (copied
below, so a later change there cannot change what this migration wrote).
"""
import hashlib
import json
from datetime import UTC

from alembic import op
import sqlalchemy as sa

from app.core.database import disable_tenant_rls, enable_tenant_rls

revision = '0023'
down_revision = '0022'

GENESIS_HASH = '0' * 64
ACTOR_FK = 'fk_audit_events_actor_id_users'

_events = sa.table(
    'audit_events',
    *(sa.column(name, sa.Uuid()) for name in ('tenant_id', 'id', 'actor_id')),
    *(
        sa.column(name, sa.String())
        for name in (
            'actor_name', 'actor_email', 'action', 'target_type', 'target_id', 'target_label',
            'ip_address', 'request_id', 'prev_hash', 'hash',
        )
    ),
    sa.column('sequence', sa.Integer()),
    sa.column('data', sa.JSON()),
    sa.column('created_at', sa.DateTime(timezone=True)),
)
_users = sa.table('users', sa.column('id', sa.Uuid()), sa.column('name', sa.String()), sa.column('email', sa.String()))


def _moment(value):
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def _text(value):
    return str(value) if value is not None else None


def _hash(row, sequence, prev_hash):
    fields = {
        'v': 1,
        'tenant_id': _text(row.tenant_id),
        'sequence': sequence,
        'id': _text(row.id),
        'action': row.action,
        'actor_id': _text(row.actor_id),
        'actor_name': row.actor_name,
        'actor_email': row.actor_email,
        'target_type': row.target_type,
        'target_id': row.target_id,
        'target_label': None,
        'data': row.data or {},
        'ip_address': row.ip_address,
        'request_id': row.request_id,
        'created_at': _moment(row.created_at),
        'prev_hash': prev_hash,
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode()
    return hashlib.sha256(canonical).hexdigest()


def _backfill(bind):
    """Chain the existing entries of each organization, oldest first, with their actors' names."""
    if bind.dialect.name == 'postgresql':
        bind.execute(sa.text("SELECT set_config('app.unscoped', 'on', true)"))
    bind.execute(
        _events.update()
        .values(
            actor_name=sa.select(_users.c.name).where(_users.c.id == _events.c.actor_id).scalar_subquery(),
            actor_email=sa.select(_users.c.email).where(_users.c.id == _events.c.actor_id).scalar_subquery(),
        )
        .where(_events.c.actor_id.is_not(None))
    )
    rows = bind.execute(
        sa.select(_events).order_by(_events.c.tenant_id, _events.c.created_at, _events.c.id)
    ).all()
    heads = {}
    for row in rows:
        sequence, prev_hash = heads.get(row.tenant_id, (0, GENESIS_HASH))
        sequence += 1
        digest = _hash(row, sequence, prev_hash)
        bind.execute(
            _events.update()
            .where(_events.c.tenant_id == row.tenant_id, _events.c.id == row.id)
            .values(sequence=sequence, prev_hash=prev_hash, hash=digest)
        )
        heads[row.tenant_id] = (sequence, digest)
    if bind.dialect.name == 'postgresql':
        bind.execute(sa.text("SELECT set_config('app.unscoped', 'off', true)"))


def upgrade():
    op.add_column(
        'organizations',
        sa.Column('audit_retention_days', sa.Integer(), server_default='365', nullable=False),
    )
    with op.batch_alter_table('audit_events') as batch_op:
        batch_op.drop_constraint(ACTOR_FK, type_='foreignkey')
        batch_op.add_column(sa.Column('sequence', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('actor_name', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('actor_email', sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column('target_label', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('hash', sa.String(length=64), nullable=True))
    _backfill(op.get_bind())
    with op.batch_alter_table('audit_events') as batch_op:
        batch_op.alter_column('sequence', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('prev_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(op.f('uq_audit_events_tenant_id_sequence'), ['tenant_id', 'sequence'])
        batch_op.create_index(
            'ix_audit_events_tenant_id_actor_id_sequence', ['tenant_id', 'actor_id', 'sequence'], unique=False
        )
    op.create_table(
        'audit_checkpoints',
        sa.Column('tenant_id', sa.Uuid(), nullable=False),
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in ('entry_count', 'head_sequence', 'anchor_sequence')),
        *(sa.Column(name, sa.String(length=64), nullable=False) for name in ('head_hash', 'anchor_hash', 'signature')),
        sa.ForeignKeyConstraint(
            ['tenant_id'], ['organizations.id'],
            name=op.f('fk_audit_checkpoints_tenant_id_organizations'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_audit_checkpoints')),
    )
    op.create_index(
        'ix_audit_checkpoints_tenant_id_created_at', 'audit_checkpoints', ['tenant_id', 'created_at'], unique=False
    )
    enable_tenant_rls(op, 'audit_checkpoints')


def downgrade():
    disable_tenant_rls(op, 'audit_checkpoints')
    op.drop_table('audit_checkpoints')  # its index with it
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        bind.execute(sa.text("SELECT set_config('app.unscoped', 'on', true)"))
    # Entries of people deleted since lose their actor id again, as the foreign key requires.
    op.execute(sa.text('UPDATE audit_events SET actor_id = NULL WHERE actor_id NOT IN (SELECT id FROM users)'))
    if bind.dialect.name == 'postgresql':
        bind.execute(sa.text("SELECT set_config('app.unscoped', 'off', true)"))
    with op.batch_alter_table('audit_events') as batch_op:
        batch_op.drop_index('ix_audit_events_tenant_id_actor_id_sequence')
        batch_op.drop_constraint(op.f('uq_audit_events_tenant_id_sequence'), type_='unique')
        batch_op.drop_column('hash')
        batch_op.drop_column('prev_hash')
        batch_op.drop_column('target_label')
        batch_op.drop_column('actor_email')
        batch_op.drop_column('actor_name')
        batch_op.drop_column('sequence')
        batch_op.create_foreign_key(ACTOR_FK, 'users', ['actor_id'], ['id'], ondelete='SET NULL')
    op.drop_column('organizations', 'audit_retention_days')
