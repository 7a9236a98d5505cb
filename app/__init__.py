"""Worklane: the application factory.

``create_app(config)`` only wires things together: importing this package or
calling the factory opens no socket, touches no database and runs no
migration. Connections are made on first use; the schema changes only through
``flask db upgrade`` (the Procfile's ``release`` process).
"""

from __future__ import annotations

from flask import Flask

from app.config import PROJECT_ROOT, BaseConfig, config_from_env
from app.core.logs import remember_secret_routes
from app.core.web import WorklaneFlask


def create_app(config: BaseConfig | None = None) -> Flask:
    """Build the Worklane WSGI app from a config object (default: the environment)."""
    if config is None:
        config = config_from_env()
    app = WorklaneFlask(
        __name__,
        instance_path=config.INSTANCE_PATH,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder="static",
    )
    app.config.from_object(config)
    app.config["WORKLANE_CONFIG"] = config

    if config.PROXY_COUNT:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # The client's address and scheme come from the proxies; the host never does: links
        # are built from PUBLIC_URL and production serves only the hosts it names.
        n = config.PROXY_COUNT
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=0, x_port=0, x_prefix=0)

    register_logging(app)
    register_extensions(app)
    register_blueprints(app)
    register_web_basics(app)
    register_commands(app)
    remember_secret_routes(app)
    return app


def register_logging(app: Flask) -> None:
    from app.core.logs import configure_logging, register_request_logging

    configure_logging(app.config["LOG_LEVEL"], json=app.config["LOG_JSON"])
    register_request_logging(app)


def register_extensions(app: Flask) -> None:
    from app.auth import identity  # noqa: F401  (what a person's or organization's change expires)
    from app.auth.login import register_login
    from app.core import (
        cache_topics,  # noqa: F401  (writes move cache versions)
        database,  # engine event hooks; SQLite GET views that write
        tenancy,  # noqa: F401  (ORM tenant scoping hooks)
    )
    from app.core.csrf_tokens import csrf_token
    from app.core.ratelimits import register_rate_limits
    from app.core.replica import register_replica_reads
    from app.core.security import check_csrf_only_on_unsafe_methods
    from app.core.sessions import register_sessions
    from app.extensions import (
        cache,
        compress,
        csrf,
        db,
        limiter,
        migrate,
        redis_connections,
    )
    from app.operators.impersonation import register_impersonation
    from app.orgs.context import register_tenant_context
    from app.sso.clients import register_clients

    db.init_app(app)
    database.register_commit_per_request(app)  # the one commit of a request
    database.register_writer_restarts(app)  # wraps the commit too
    register_replica_reads(app)  # page views on the replica, when there is one
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    cache.init_app(app)
    compress.init_app(app)
    csrf.init_app(app)
    check_csrf_only_on_unsafe_methods(app)
    app.jinja_env.globals["csrf_token"] = csrf_token  # Flask-WTF's, signed once per session
    redis_connections.init_app(app)
    # Sessions live in Redis: the client object is created here, connected on first use.
    register_sessions(app, redis_connections.client(app))
    limiter.init_app(app)
    register_rate_limits(app)
    register_login(app)
    register_tenant_context(app)
    register_impersonation(app)  # an operator signed in as someone: banner, audit, limits
    register_clients(app)  # each organization's OpenID Connect client (app/sso/clients.py)


def register_blueprints(app: Flask) -> None:
    from app.api import bp as api_bp
    from app.api.docs_routes import bp as api_docs_bp
    from app.apikeys.routes import bp as api_keys_bp
    from app.audit import bp as audit_bp
    from app.auth import bp as auth_bp
    from app.exports import bp as exports_bp
    from app.extensions import csrf
    from app.health import bp as health_bp
    from app.home import bp as home_bp
    from app.imports import bp as imports_bp
    from app.issues import bp as issues_bp
    from app.labels import bp as labels_bp
    from app.notifications.routes import bp as notifications_bp
    from app.operators import bp as operators_bp
    from app.orgs import bp as orgs_bp
    from app.orgs import org_bp
    from app.plans.routes import bp as plans_bp
    from app.projects import bp as projects_bp
    from app.reports import bp as reports_bp
    from app.sso import bp as sso_bp
    from app.sso import settings_bp as sso_settings_bp
    from app.tasks import bp as tasks_bp
    from app.tasks import system_bp as system_check_bp
    from app.webhooks import bp as webhooks_bp

    app.register_blueprint(home_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(orgs_bp)
    app.register_blueprint(system_check_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(operators_bp)
    app.register_blueprint(sso_bp)
    app.register_blueprint(api_bp)  # /api/v1: keys, not sessions, so no CSRF token
    csrf.exempt(api_bp)
    app.register_blueprint(api_docs_bp)
    if app.config["ENV_NAME"] == "development":
        from app.devmail.routes import bp as devmail_bp

        app.register_blueprint(devmail_bp)  # /dev/mail: the mail the local sink caught
    # Last: /<org-slug>/… must never shadow the app's own top-level pages.
    app.register_blueprint(org_bp)
    app.register_blueprint(projects_bp)
    app.register_blueprint(issues_bp)
    app.register_blueprint(labels_bp)
    app.register_blueprint(notifications_bp)
    app.register_blueprint(tasks_bp)
    app.register_blueprint(exports_bp)
    app.register_blueprint(imports_bp)
    app.register_blueprint(reports_bp)
    app.register_blueprint(audit_bp)
    app.register_blueprint(sso_settings_bp)
    app.register_blueprint(api_keys_bp)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(plans_bp)


def register_web_basics(app: Flask) -> None:
    from app.core.errors import register_error_handlers
    from app.core.metrics import register_http_metrics
    from app.core.offline import register_offline
    from app.core.security import register_host_check, register_security_headers
    from app.core.web import register_input_checks, register_static_versioning, register_template_helpers

    register_error_handlers(app)
    register_security_headers(app)
    register_host_check(app)
    register_input_checks(app)
    register_static_versioning(app)
    register_offline(app)
    register_template_helpers(app)
    register_http_metrics(app)  # counts and times every request


def register_commands(app: Flask) -> None:
    from app.cli import register_cli

    register_cli(app)
