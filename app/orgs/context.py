"""Tenant pages: ``/<org-slug>/…`` resolves the organization, checks membership, sets the tenant.

Every feature with tenant pages makes its blueprint with ``tenant_blueprint``; nothing else
is needed for its views to run scoped to the right organization. A slug the user is not a
member of answers 404, exactly like a slug that does not exist.
"""

from __future__ import annotations

from flask import Blueprint, Flask, abort, g, make_response, render_template, request

from app.auth import sso_session
from app.auth.identity import MembershipSummary, signed_in
from app.core.dates import format_datetime
from app.core.tenancy import reset_request_tenant, set_request_tenant
from app.extensions import db, login_manager
from app.models import Membership, Organization
from app.models.base import utcnow
from app.orgs import two_factor_policy
from app.orgs.services import membership_for

ORG_SLUG = "org_slug"


def tenant_blueprint(name: str, import_name: str, url_prefix: str = "") -> Blueprint:
    bp = Blueprint(name, import_name, url_prefix=f"/<{ORG_SLUG}>{url_prefix}")
    bp.is_tenant_blueprint = True

    @bp.url_value_preprocessor
    def _enter_organization(endpoint, values):
        enter_organization(values.pop(ORG_SLUG))

    @bp.url_defaults
    def _add_org_slug(endpoint, values):
        if ORG_SLUG not in values and g.get("access") is not None:
            values[ORG_SLUG] = g.access.slug

    return bp


def enter_organization(slug: str) -> None:
    """Resolve the organization for this request, or stop it (login redirect or 404).

    Membership comes from the signed-in person's cached account (app/auth/identity.py),
    which any membership change expires at commit: no query on the way in. A member the
    organization's two-factor policy keeps out gets the page that sends them to set it up, and
    one of an organization that enforces single sign-on, without a recent sign-in through its
    provider, the page that sends them there.
    """
    account = signed_in()
    if account is None:
        abort(login_manager.unauthorized())
    access = account.access_to(slug.lower())
    if access is None:
        abort(404)
    if access.suspended_at is not None:
        abort(
            403,
            f"{access.name} is suspended by the operators of this service: its pages are closed. "
            "Its owners have been told why by email.",
        )
    if access.deletion_due_at is not None:
        _while_deletion_waits(access)
    if two_factor_policy.blocked(account, access):
        page = render_template("orgs/two_factor_required.html", organization_name=access.name)
        abort(make_response(page, 403))
    if access.sso_enforced and not sso_session.admits(access.org_id):
        page = render_template("sso/required.html", access=access, next_url=request.full_path)
        abort(make_response(page, 403))
    set_request_tenant(access.org_id)
    g.access = access


#: What a member may still do while their organization waits to be deleted, besides reading:
#: an owner cancels, an admin takes an export of what will go.
CHANGES_WHILE_DELETION_WAITS = frozenset({"org.cancel_deletion", "exports.start"})


def _while_deletion_waits(access: MembershipSummary) -> None:
    """An organization to be deleted is read-only (but for cancelling), and gone once it is due."""
    if access.deletion_due_at <= utcnow():
        abort(410, f"{access.name} has been deleted.")
    if (
        request.method not in ("GET", "HEAD", "OPTIONS")
        and request.endpoint not in CHANGES_WHILE_DELETION_WAITS
    ):
        due = format_datetime(access.deletion_due_at)
        abort(
            423,
            f"{access.name} is to be deleted on {due} and is read-only until then. "
            "An owner can cancel the deletion in the organization's settings.",
        )


def current_access() -> MembershipSummary | None:
    """This request's organization and the member's role in it (None outside one)."""
    return g._get_current_object().get("access")  # a read through the proxy costs about 1 µs


def current_organization() -> Organization:
    """This request's organization as a row (loaded on first use, for pages that change it)."""
    if "org" not in g:
        g.org = db.session.get(Organization, require_access().org_id)
    return g.org


def current_membership() -> Membership:
    """The member's membership row in this request's organization (loaded on first use)."""
    if "membership" not in g:
        g.membership = membership_for(current_organization(), signed_in().user_id)
        if g.membership is None:  # removed since the account was read
            abort(404)
    return g.membership


def require_access() -> MembershipSummary:
    access = g.get("access")
    if access is None:
        raise RuntimeError("not inside an organization's page")
    return access


def register_tenant_context(app: Flask) -> None:
    # The tenant is per request: always cleared when the request ends.
    app.teardown_request(reset_request_tenant)
