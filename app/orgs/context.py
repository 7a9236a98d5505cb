"""Tenant pages: ``/<org-slug>/…`` resolves the organization, checks membership, sets the tenant.

Every feature with tenant pages makes its blueprint with ``tenant_blueprint``; nothing else
is needed for its views to run scoped to the right organization. A slug the user is not a
member of answers 404, exactly like a slug that does not exist.
"""

from __future__ import annotations

from flask import Blueprint, Flask, abort, g
from flask_login import current_user
from sqlalchemy import select

from app.extensions import db, login_manager
from app.models import Organization
from app.orgs.services import membership_for
from app.tenancy import reset_request_tenant, set_request_tenant

ORG_SLUG = "org_slug"


def tenant_blueprint(name: str, import_name: str, url_prefix: str = "") -> Blueprint:
    bp = Blueprint(name, import_name, url_prefix=f"/<{ORG_SLUG}>{url_prefix}")
    bp.is_tenant_blueprint = True

    @bp.url_value_preprocessor
    def _enter_organization(endpoint, values):
        enter_organization(values.pop(ORG_SLUG))

    @bp.url_defaults
    def _add_org_slug(endpoint, values):
        if ORG_SLUG not in values and g.get("org") is not None:
            values[ORG_SLUG] = g.org.slug

    return bp


def enter_organization(slug: str) -> None:
    """Resolve the organization for this request, or stop it (login redirect or 404)."""
    if not current_user.is_authenticated:
        abort(login_manager.unauthorized())
    org = db.session.scalar(select(Organization).where(Organization.slug == slug.lower()))
    if org is None:
        abort(404)
    membership = membership_for(org, current_user.id)
    if membership is None:
        abort(404)
    set_request_tenant(org.id)
    g.org = org
    g.membership = membership


def register_tenant_context(app: Flask) -> None:
    # The tenant is per request: always cleared when the request ends.
    app.teardown_request(reset_request_tenant)
