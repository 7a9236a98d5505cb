"""Single sign-on per organization over OpenID Connect, and the email domains it has proven.

``sso_connections`` (one per organization: the provider, the client, its encrypted secret),
``sso_identities`` (people linked to a subject at it) and ``sso_domains`` (domains an admin
added, with the token of their DNS record) are tenant tables with row-level security.
``verified_domains`` is global: a domain proven by one organization, so that no two hold it.
``organizations.sso_enforced_at`` says since when members must sign in through the provider.
"""
from alembic import op
import sqlalchemy as sa

from app.core.database import disable_tenant_rls, enable_tenant_rls

revision = '0024'
down_revision = '0023'

TENANT_TABLES = ('sso_connections', 'sso_identities', 'sso_domains')


def _tenant_key(table):
    return (
        sa.Column('tenant_id', sa.Uuid(), nullable=False),
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ['tenant_id'], ['organizations.id'], name=op.f(f'fk_{table}_tenant_id_organizations'), ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f(f'pk_{table}')),
    )


def upgrade():
    op.create_table('sso_connections',
    *_tenant_key('sso_connections'),
    sa.Column('issuer', sa.String(length=500), nullable=False),
    sa.Column('client_id', sa.String(length=255), nullable=False),
    sa.Column('client_secret', sa.Text(), nullable=False),
    sa.Column('default_role', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('checked_version', sa.Integer(), nullable=True),
    sa.Column('check_problem', sa.String(length=500), nullable=True),
    sa.Column('enabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint('tenant_id', name=op.f('uq_sso_connections_tenant_id'))
    )
    op.create_table('sso_identities',
    *_tenant_key('sso_identities'),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('issuer', sa.String(length=500), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_signed_in_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_sso_identities_user_id_users'), ondelete='CASCADE'),
    sa.UniqueConstraint('tenant_id', 'issuer', 'subject', name=op.f('uq_sso_identities_tenant_id_issuer_subject')),
    sa.UniqueConstraint('tenant_id', 'user_id', 'issuer', name=op.f('uq_sso_identities_tenant_id_user_id_issuer'))
    )
    op.create_table('sso_domains',
    *_tenant_key('sso_domains'),
    sa.Column('domain', sa.String(length=253), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint('tenant_id', 'domain', name=op.f('uq_sso_domains_tenant_id_domain'))
    )
    op.create_table('verified_domains',
    sa.Column('domain', sa.String(length=253), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_verified_domains_org_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('domain', name=op.f('pk_verified_domains'))
    )
    with op.batch_alter_table('verified_domains', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_verified_domains_org_id'), ['org_id'], unique=False)
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sso_enforced_at', sa.DateTime(timezone=True), nullable=True))
    for table in TENANT_TABLES:
        enable_tenant_rls(op, table)


def downgrade():
    for table in TENANT_TABLES:
        disable_tenant_rls(op, table)
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.drop_column('sso_enforced_at')
    op.drop_table('verified_domains')
    for table in reversed(TENANT_TABLES):
        op.drop_table(table)
