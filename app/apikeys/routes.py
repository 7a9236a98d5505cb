"""An organization's API keys in its settings: made (shown once), listed, revoked; and the
longest a key may live. Owners and admins."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.apikeys import services as api_keys
from app.apikeys.forms import MaxDaysForm, NewKeyForm
from app.apikeys.scopes import SCOPES
from app.core.confirm import confirmation, confirmed
from app.core.permissions import require
from app.extensions import db
from app.models import ApiKey, User
from app.models.base import utcnow
from app.orgs.context import current_organization, tenant_blueprint

bp = tenant_blueprint("api_keys", __name__, "/settings/api-keys")


def _page(status: int = 200, new_token: str | None = None, **forms):
    org = current_organization()
    if "key_form" not in forms:
        forms["key_form"] = NewKeyForm(formdata=None, prefix="key")
    forms["key_form"].offer_lifetimes(org.api_key_max_days)
    forms.setdefault("max_days_form", MaxDaysForm(formdata=None, data={"max_days": org.api_key_max_days}))
    keys = api_keys.keys_of_tenant()
    makers = {user.id: user for user in _users({key.created_by_id for key in keys})}
    page = render_template(
        "apikeys/index.html",
        organization=org,
        keys=keys,
        makers=makers,
        scopes=SCOPES,
        now=utcnow(),
        new_token=new_token,
        **forms,
    )
    return page, status


def _users(ids) -> list[User]:
    ids = [user_id for user_id in ids if user_id is not None]
    if not ids:
        return []
    return list(db.session.scalars(db.select(User).where(User.id.in_(ids))))


@bp.get("")
@require("org.update")
def index():
    return _page()


@bp.post("")
@require("org.update")
def create():
    org = current_organization()
    form = NewKeyForm(prefix="key")
    form.offer_lifetimes(org.api_key_max_days)
    if not form.validate_on_submit():
        return _page(422, key_form=form)
    try:
        _key, token = api_keys.create(org, current_user, form.name.data, form.scopes.data, form.days.data)
    except api_keys.KeyProblem as problem:
        form.name.errors = [*form.name.errors, str(problem)]
        return _page(422, key_form=form)
    # Shown in this answer only: the key is never shown again (only its hash is kept).
    return _page(201, new_token=token, key_form=NewKeyForm(formdata=None, prefix="key"))


@bp.post("/lifetime")
@require("org.update")
def lifetime():
    form = MaxDaysForm()
    if not form.validate_on_submit():
        return _page(422, max_days_form=form)
    api_keys.set_max_days(current_organization(), form.max_days.data)
    flash(f"New keys live at most {form.max_days.data} days.", "success")
    return redirect(url_for("api_keys.index"), 303)


@bp.route("/<api_key_id>/revoke", methods=["GET", "POST"])
@require("org.update")
def revoke(api_key_id):
    key = ApiKey.get_scoped(db.session, api_key_id) or abort(404)
    if request.method == "GET":
        return confirmation(
            f"Revoke the key “{key.name}”?",
            [
                f"Whatever uses the key ending in {key.last_four} is refused from now on.",
                "A revoked key cannot be used again: make a new one if it is still needed.",
            ],
            "Revoke the key",
            url_for("api_keys.index"),
        )
    confirmed()
    api_keys.revoke(key, current_user)
    flash(f"The key “{key.name}” is revoked.", "success")
    return redirect(url_for("api_keys.index"), 303)
