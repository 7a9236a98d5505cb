"""Flask CLI commands of the app: roles, demo data, stored Markdown HTML, importing an export,
re-encrypting stored secrets, verifying the audit log.

The process commands ``flask worker`` and ``flask scheduler`` are the processes' own
(``workers/cli.py``), added by ``wsgi.py``: the app never imports ``workers``.
"""

from __future__ import annotations

import click
from flask import Flask, current_app

from app.plans.catalog import PLAN_NAMES


def register_cli(app: Flask) -> None:
    @app.cli.command("grant-app-role")
    @click.argument("role")
    def grant_app_role_command(role):
        """Grant the app's login ROLE use of the tables and functions (run as the owner, after migrations)."""
        from sqlalchemy import create_engine, text

        from app.core.database import app_role_grants

        url = (
            current_app.config.get("DATABASE_MIGRATION_URL") or current_app.config["SQLALCHEMY_DATABASE_URI"]
        )
        engine = create_engine(url)
        if engine.dialect.name != "postgresql":
            raise click.ClickException("roles and grants exist on PostgreSQL only")
        try:
            statements = app_role_grants(role)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="ROLE") from exc
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))
        engine.dispose()
        click.echo(f"granted {role} the use of the schema's tables and functions")

    @app.cli.command("seed-demo")
    def seed_demo_command():
        """Create the demo organization and its login (development only; does nothing twice)."""
        from app.demo import seed_demo

        if current_app.config["ENV_NAME"] == "production":
            raise click.ClickException("the demo data is for development only")
        created, email, password = seed_demo()
        if created:
            click.echo(f"demo organization created; log in as {email} with password {password}")
        else:
            click.echo(f"demo organization present; log in as {email} with password {password}")

    @app.cli.group("markdown")
    def markdown_group():
        """Issue descriptions and comments: their stored HTML."""

    @markdown_group.command("render")
    def render_markdown_command():
        """Store the HTML of descriptions and comments stored without it or by an older renderer."""
        from sqlalchemy import select

        from app.core.tenancy import tenant_context
        from app.extensions import db
        from app.issues.rendered_markdown import store_rendered_markdown
        from app.models import Organization

        written = 0
        for org_id in db.session.scalars(select(Organization.id).order_by(Organization.id)).all():
            with tenant_context(org_id):
                while batch := store_rendered_markdown():
                    db.session.commit()
                    written += batch
        click.echo(f"stored the HTML of {written:,} descriptions and comments")

    @app.cli.group("org")
    def org_group():
        """Organizations: import an export into a new one."""

    @org_group.command("import-export")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    @click.option("--name", required=True, help="Name of the new organization.")
    @click.option("--owner", "owner_email", required=True, help="Email of an existing account: the owner.")
    @click.option("--slug", default=None, help="Address of the new organization (default: from the name).")
    @click.option(
        "--plan",
        default=None,
        type=click.Choice(PLAN_NAMES),
        help="Plan of the new organization (default: DEFAULT_PLAN); what it holds must fit.",
    )
    def import_export_command(file, name, owner_email, slug, plan):
        """Create a NEW organization from an export zip; people are matched by email."""
        from app.exports.restore import ImportProblem, import_export

        try:
            report = import_export(file, name, owner_email, slug=slug, plan=plan)
        except ImportProblem as exc:
            raise click.ClickException(f"nothing imported: {exc}") from exc
        click.echo(f"imported into /{report.slug}/ ({report.organization_id})")
        for table, count in report.rows.items():
            click.echo(f"  {table}: {count:,}")
        if report.members_added:
            click.echo(f"members added: {', '.join(report.members_added)}")
        for email, skipped in sorted(report.unknown_people.items()):
            what = ", ".join(f"{count:,} {use}" for use, count in sorted(skipped.items()))
            click.echo(f"no account for {email}: {what}")

    @app.cli.group("secrets")
    def secrets_group():
        """Secrets stored encrypted (ENCRYPTION_KEYS)."""

    @secrets_group.command("rotate")
    def rotate_secrets_command():
        """Re-encrypt every stored secret under the newest key of ENCRYPTION_KEYS (then the old can go)."""
        from sqlalchemy import select

        from app.core.encryption import encrypted_columns, rotate_column
        from app.core.tenancy import TenantMixin, tenant_context
        from app.extensions import db
        from app.models import Organization

        models = [mapper.class_ for mapper in db.Model.registry.mappers]
        org_ids = db.session.scalars(select(Organization.id).order_by(Organization.id)).all()
        for model, name in encrypted_columns(models):
            rotated = 0
            for tenant_id in org_ids if issubclass(model, TenantMixin) else [None]:
                with tenant_context(tenant_id):
                    rotated += rotate_column(db.session, model, name)
                    db.session.commit()
            click.echo(f"{model.__tablename__}.{name}: {rotated:,} re-encrypted")

    @app.cli.group("audit")
    def audit_group():
        """The audit log: check its hash chains and signed checkpoints."""

    @audit_group.command("verify")
    @click.option("--org", "slug", default=None, help="Only this organization (its address).")
    def verify_audit_command(slug):
        """Walk each organization's audit chain and checkpoints; exit 1 naming the first bad entry."""
        from sqlalchemy import select

        from app.audit.chain import verify_chain
        from app.core.tenancy import tenant_context, unscoped
        from app.extensions import db
        from app.models import Organization

        with unscoped("verifying the audit log of every organization"):
            statement = select(Organization.id, Organization.slug).order_by(Organization.slug)
            if slug:
                statement = statement.where(Organization.slug == slug.lower())
            organizations = db.session.execute(statement).all()
        if slug and not organizations:
            raise click.ClickException(f"no organization at /{slug}/")
        failed = 0
        for org_id, org_slug in organizations:
            with tenant_context(org_id):
                report = verify_chain()
            db.session.rollback()
            if report.ok:
                click.echo(f"{org_slug}: ok ({report.entries} entries, {report.checkpoints} checkpoints)")
            else:
                failed += 1
                click.echo(f"{org_slug}: FAILED: {report.problem}", err=True)
        if failed:
            raise SystemExit(1)
