"""An organization's own pages: its dashboard, members, invitations and settings."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, session, url_for
from flask_login import current_user
from sqlalchemy import select

from app.auth.identity import organizations_of, signed_in_id
from app.core import edits
from app.core.confirm import confirmation, confirmed
from app.core.mail import public_url, send_email
from app.core.permissions import ROLE_DESCRIPTIONS, ROLE_LABELS, ROLES, can, require, roles_grantable_by
from app.core.ratelimits import invitation_limit, resend_limit
from app.core.security import InvalidToken, make_token, read_token
from app.core.web import duration_text
from app.extensions import db
from app.issues import queries as issue_queries
from app.models import Invitation, Membership, User
from app.models.base import utcnow
from app.models.work import PRIORITY_LABELS
from app.orgs import org_bp as bp
from app.orgs import overview, two_factor_policy
from app.orgs import services as orgs
from app.orgs.context import current_access, current_membership, current_organization
from app.orgs.forms import (
    ConfirmForm,
    InviteForm,
    OrganizationSettingsForm,
    RoleForm,
    policy_form,
    role_choices,
    settings_form,
)
from app.projects.workflow import names_by_project


def _membership_or_404(membership_id) -> Membership:
    membership = Membership.get_scoped(db.session, membership_id)
    if membership is None:
        abort(404)
    return membership


def _invitation_or_404(invitation_id) -> Invitation:
    invitation = Invitation.get_scoped(db.session, invitation_id)
    if invitation is None:
        abort(404)
    return invitation


@bp.get("/")
@require("org.view")
def dashboard():
    """The organization at a glance: projects by state, the person's open work, the latest
    activity and, while the organization is new, its first steps."""
    mine = issue_queries.open_assigned_to(signed_in_id())
    return render_template(
        "orgs/dashboard.html",
        overview=overview.organization_overview(),
        my_work=mine[:MY_WORK_SHOWN],
        my_work_total=len(mine),
        state_labels=names_by_project(),
        priority_labels=PRIORITY_LABELS,
    )


#: Issues of the person's open work the overview lists (My work has them all).
MY_WORK_SHOWN = 5


# --- members -------------------------------------------------------------------------------


def _members_page(invite_form=None, status=200, conflict=None, undo=None):
    members = db.session.scalars(
        select(Membership).join(User, User.id == Membership.user_id).order_by(User.name)
    ).all()
    invitations = db.session.scalars(
        select(Invitation)
        .where(Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
        .order_by(Invitation.created_at.desc())
    ).all()
    grantable = roles_grantable_by(current_access().role)
    if invite_form is None:
        invite_form = InviteForm(role="member")
    invite_form.role.choices = role_choices(grantable)
    return render_template(
        "orgs/members.html",
        members=members,
        invitations=invitations,
        invite_form=invite_form,
        role_form=RoleForm(),
        confirm_form=ConfirmForm(),
        grantable=grantable,
        role_labels=ROLE_LABELS,
        role_descriptions=ROLE_DESCRIPTIONS,
        conflict=conflict,
        undo=undo,
    ), status


@bp.get("/members")
@require("members.view")
def members():
    return _members_page(undo=session.pop(_UNDO_KEY, None))


def _apply(action, success: str, back: str = "org.members"):
    """Run a member or invitation change: commit and confirm, or roll back and say why not."""
    try:
        action()
    except orgs.OrgError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("org.members"), 303)
    flash(success, "success")
    return redirect(back if back.startswith("/") else url_for(back), 303)


@bp.post("/members/<uuid:membership_id>/role")
@require("members.change_role")
def change_role(membership_id):
    """Change a member's role, unless someone else changed it since the page was loaded (409)."""
    target = _membership_or_404(membership_id)
    form = RoleForm()
    form.role.choices = role_choices(ROLES)
    if not form.validate_on_submit():
        abort(400, "Choose one of the listed roles.")
    loaded = edits.decode(request.form.get(edits.LOADED_FIELD), ["role"])
    try:
        target, to_write = orgs.role_edit(target, loaded, form.role.data)
    except edits.EditConflict as conflict:
        db.session.rollback()
        return _members_page(status=409, conflict=conflict)
    if not to_write:
        return redirect(url_for("org.members"), 303)
    message = f"{target.user.name} is now {ROLE_LABELS.get(form.role.data, '').lower()}."
    return _apply(lambda: orgs.change_role(current_membership(), target, form.role.data), message)


#: Minutes during which a removal can be undone from the members page.
UNDO_MINUTES = 10
_UNDO_TOKEN = "member-removal"
_UNDO_KEY = "undo_removal"


@bp.route("/members/<uuid:membership_id>/remove", methods=["GET", "POST"])
@require("members.remove")
def remove_member(membership_id):
    """Remove someone, once confirmed; the members page then offers to undo it for a while."""
    target = _membership_or_404(membership_id)
    name, org = target.user.name, current_access().name
    if request.method == "GET":
        return confirmation(
            f"Remove {name} from {org}?",
            [
                f"{name} loses access to {org}'s projects, issues and reports at once.",
                "What they wrote stays: their issues, comments and history keep their name.",
                f"You can undo this for {UNDO_MINUTES} minutes.",
            ],
            f"Remove {name}",
            url_for("org.members"),
        )
    confirmed()
    payload = {"t": str(current_access().org_id), "u": str(target.user_id), "r": target.role}

    def remove_and_offer_undo():
        orgs.remove_member(current_membership(), target)
        session[_UNDO_KEY] = {"name": name, "token": make_token(_UNDO_TOKEN, payload)}

    return _apply(remove_and_offer_undo, f"{name} was removed from {org}.")


@bp.post("/members/restore")
@require("members.remove")
def restore_member():
    """Undo a removal: the person is a member again, with the role they had."""
    confirmed()
    try:
        payload = read_token(_UNDO_TOKEN, request.form.get("token", ""), UNDO_MINUTES * 60)
    except InvalidToken:
        abort(400, f"A removal can be undone for {UNDO_MINUTES} minutes; invite them again instead.")
    if payload.get("t") != str(current_access().org_id):
        abort(400, "This undo belongs to another organization.")
    return _apply(
        lambda: orgs.restore_member(current_membership(), payload["u"], payload["r"]),
        f"The removal is undone: they are a member of {current_access().name} again.",
    )


@bp.route("/leave", methods=["GET", "POST"])
@require("org.view")
def leave():
    org = current_access().name
    if request.method == "GET":
        return confirmation(
            f"Leave {org}?",
            [
                f"You lose access to {org}'s projects, issues and reports at once.",
                "To come back, an owner or admin must invite you again.",
            ],
            f"Leave {org}",
            url_for("org.members"),
        )
    confirmed()
    others = [o for o in organizations_of(current_user.id) if o.org_id != current_access().org_id]
    back = url_for("org.dashboard", org_slug=others[0].slug) if others else url_for("orgs.new")
    me = current_membership()
    return _apply(lambda: orgs.remove_member(me, me), f"You left {current_access().name}.", back)


# --- invitations ---------------------------------------------------------------------------


def _send_invitation(invitation: Invitation) -> None:
    send_email(
        invitation.email,
        "invitation",
        inviter_name=current_user.name,
        org_name=current_access().name,
        role=ROLE_LABELS[invitation.role].lower(),
        accept_url=public_url("orgs.invitation", token=orgs.invitation_token(invitation)),
        expires_in=duration_text(invitation.expires_at - utcnow()),
    )


@bp.post("/invitations")
@require("members.invite")
@invitation_limit
def invite():
    form = InviteForm()
    form.role.choices = role_choices(roles_grantable_by(current_access().role))
    if form.validate_on_submit():
        try:
            invitation = orgs.invite(current_membership(), form.email.data, form.role.data)
        except orgs.OrgError as exc:
            db.session.rollback()
            form.email.errors.append(str(exc))
        else:
            _send_invitation(invitation)
            flash(f"Invitation sent to {invitation.email}.", "success")
            return redirect(url_for("org.members"), 303)
    return _members_page(invite_form=form, status=422)


@bp.post("/invitations/<uuid:invitation_id>/resend")
@require("members.invite")
@invitation_limit
@resend_limit
def resend_invitation(invitation_id):
    invitation = _invitation_or_404(invitation_id)
    confirmed()
    return _apply(
        lambda: (orgs.resend(invitation), _send_invitation(invitation)),
        f"Invitation sent again to {invitation.email}.",
    )


@bp.route("/invitations/<uuid:invitation_id>/revoke", methods=["GET", "POST"])
@require("members.invite")
def revoke_invitation(invitation_id):
    invitation = _invitation_or_404(invitation_id)
    if request.method == "GET":
        return confirmation(
            f"Revoke the invitation for {invitation.email}?",
            ["The link in their mail stops working. You can invite them again later."],
            "Revoke invitation",
            url_for("org.members"),
        )
    confirmed()
    return _apply(lambda: orgs.revoke(invitation), f"The invitation for {invitation.email} is revoked.")


# --- settings -------------------------------------------------------------------------------


def _settings_page(form, status: int = 200, **context):
    org = current_organization()
    policy = policy_form(two_factor_policy.policy_values(org))
    page = render_template(
        "orgs/settings.html",
        form=form,
        policy_form=policy,
        organization=org,
        confirm_form=ConfirmForm(),
        **context,
    )
    return page, status


@bp.route("/settings", methods=["GET", "POST"])
@require("org.view")
def settings():
    org = current_organization()
    if request.method == "GET":
        values = orgs.settings_values(org)
        return _settings_page(settings_form(values, values))
    if not can("org.update"):
        abort(403)
    form = OrganizationSettingsForm()
    if not form.validate_on_submit():
        return _settings_page(form, 422)
    loaded = edits.decode(form.loaded.data, orgs.SETTINGS_FIELDS)
    submitted = {"name": form.name.data.strip()}
    # Left empty (or by a form that does not show it), the retention stays as it was loaded.
    submitted["audit_retention_days"] = form.audit_retention_days.data or loaded["audit_retention_days"]
    try:
        orgs.update_settings(org, loaded, submitted)
    except edits.EditConflict as conflict:
        db.session.rollback()
        current = orgs.settings_values(current_organization())
        form = settings_form(edits.after_conflict(current, loaded, submitted), current)
        return _settings_page(form, 409, conflict=conflict)
    flash("Organization settings saved.", "success")
    return redirect(url_for("org.settings"), 303)
