"""Alembic environment: runs inside the Flask app (``flask db …``) on its engine.

Logging is left as the app configured it (no fileConfig), so migrations log
JSON like every other process.
"""

import logging

from alembic import context
from flask import current_app
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

import app.models  # noqa: F401  (every model in the metadata)
from app.core.tenancy import unscoped
from app.issues.search_sql import include_in_schema_comparison
from app.models.base import UTCDateTime

config = context.config
logger = logging.getLogger("alembic.env")

target_db = current_app.extensions["migrate"].db


def get_engine():
    """The owner's engine when DATABASE_MIGRATION_URL is set, else the app's."""
    url = current_app.config.get("DATABASE_MIGRATION_URL")
    if url:
        return create_engine(url, poolclass=NullPool)
    return target_db.engine


def get_metadata():
    return target_db.metadata


def render_item(type_, obj, autogen_context):
    """Write the app's column types as plain SQLAlchemy types in migration files."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations_offline():
    """Emit SQL for the configured URL instead of running it (``flask db upgrade --sql``)."""
    context.configure(
        url=get_engine().url.render_as_string(hide_password=False),
        target_metadata=get_metadata(),
        literal_binds=True,
        render_as_batch=get_engine().dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    def process_revision_directives(context, revision, directives):
        # `flask db migrate` with no model change writes no empty revision.
        if getattr(config.cmd_opts, "autogenerate", False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    conf_args = dict(current_app.extensions["migrate"].configure_args)
    conf_args.setdefault("process_revision_directives", process_revision_directives)
    conf_args.setdefault("render_item", render_item)
    # Search objects the database maintains itself (migration 0004) are not in the models.
    conf_args.setdefault("include_name", include_in_schema_comparison)

    connection = config.attributes.get("connection")
    if connection is not None:  # a caller (the tests) handed us its connection
        _run(connection, conf_args)
        return
    with get_engine().connect() as connection:
        _run(connection, conf_args)


def _run(connection, conf_args):
    if connection.dialect.name == "sqlite":
        # app/core/database.py makes SQLite transactional (explicit BEGIN), so DDL
        # is committed or rolled back with the migration.
        conf_args["render_as_batch"] = True
        conf_args["transactional_ddl"] = True
    context.configure(connection=connection, target_metadata=get_metadata(), **conf_args)
    with context.begin_transaction():
        context.run_migrations()


# Data migrations must see every tenant's rows (RLS is forced even for the owner).
with unscoped("schema migrations"):
    if context.is_offline_mode():
        run_migrations_offline()
    else:
        run_migrations_online()
