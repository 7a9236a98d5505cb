"""An organization's webhook settings (owners and admins): the endpoints, each with its secret,
its on/off switch and its delivery log, each delivery's attempts and a redelivery."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, session, url_for

from app.core.confirm import ConfirmForm, confirmation, confirmed
from app.core.permissions import require
from app.extensions import db
from app.models import WebhookEndpoint
from app.webhooks import bp, services
from app.webhooks.events import EVENT_TYPES
from app.webhooks.forms import EndpointForm

#: The session key naming the endpoint whose secret the next page shows (once, after creating
#: it or rotating its secret).
_SHOW_SECRET = "webhook_secret_shown"


def _endpoint(webhook_endpoint_id) -> WebhookEndpoint:
    return WebhookEndpoint.get_scoped(db.session, webhook_endpoint_id) or abort(404)


def _to_endpoint(endpoint: WebhookEndpoint, show_secret: bool = False):
    if show_secret:
        session[_SHOW_SECRET] = str(endpoint.id)
    return redirect(url_for("webhooks.endpoint", webhook_endpoint_id=endpoint.id), 303)


def _index(form: EndpointForm, status: int = 200):
    page = render_template(
        "webhooks/index.html", endpoints=services.endpoints_of_tenant(), form=form, event_types=EVENT_TYPES
    )
    return page, status


@bp.get("")
@require("org.update")
def index():
    return _index(EndpointForm(prefix="endpoint", formdata=None))


@bp.post("")
@require("org.update")
def create():
    form = EndpointForm(prefix="endpoint")
    if form.validate_on_submit():
        try:
            endpoint = services.create(form.url.data, form.description.data, form.event_types.data)
        except services.EndpointError as exc:
            form.url.errors.append(str(exc))
        else:
            flash("Endpoint added. Copy its signing secret now: your receiver needs it.", "success")
            return _to_endpoint(endpoint, show_secret=True)
    return _index(form, 422)


def _endpoint_page(endpoint: WebhookEndpoint, form: EndpointForm | None = None, status: int = 200):
    if form is None:
        data = {"url": endpoint.url, "description": endpoint.description, "event_types": endpoint.event_types}
        form = EndpointForm(prefix="endpoint", formdata=None, data=data)
    page_number = request.args.get("page", 1, type=int) or 1
    log, more = services.delivery_log(endpoint, max(page_number, 1))
    show_secret = status == 200 and session.get(_SHOW_SECRET) == str(endpoint.id)
    if show_secret:
        session.pop(_SHOW_SECRET)
    page = render_template(
        "webhooks/endpoint.html",
        endpoint=endpoint,
        form=form,
        event_types=EVENT_TYPES,
        log=log,
        page_number=max(page_number, 1),
        more=more,
        show_secret=show_secret,
        previous_secret_until=services.previous_secret_until(endpoint),
        confirm_form=ConfirmForm(),
    )
    return page, status


@bp.get("/<webhook_endpoint_id>")
@require("org.update")
def endpoint(webhook_endpoint_id):
    return _endpoint_page(_endpoint(webhook_endpoint_id))


@bp.post("/<webhook_endpoint_id>")
@require("org.update")
def save(webhook_endpoint_id):
    found = _endpoint(webhook_endpoint_id)
    form = EndpointForm(prefix="endpoint")
    if form.validate_on_submit():
        try:
            changed = services.update(found, form.url.data, form.description.data, form.event_types.data)
        except services.EndpointError as exc:
            form.url.errors.append(str(exc))
        else:
            if changed:
                flash("Endpoint saved.", "success")
            return _to_endpoint(found)
    return _endpoint_page(found, form, 422)


@bp.post("/<webhook_endpoint_id>/rotate")
@require("org.update")
def rotate(webhook_endpoint_id):
    confirmed()
    found = _endpoint(webhook_endpoint_id)
    services.rotate_secret(found)
    flash("New secret made. For 24 hours deliveries are signed with the old secret too.", "success")
    return _to_endpoint(found, show_secret=True)


_SWITCHED = {
    True: "Endpoint enabled: new events are sent to it.",
    False: "Endpoint disabled: nothing is sent to it until it is enabled again.",
}


def _switch(webhook_endpoint_id, on: bool):
    confirmed()
    found = _endpoint(webhook_endpoint_id)
    (services.enable if on else services.disable)(found)
    flash(_SWITCHED[on], "success")
    return _to_endpoint(found)


@bp.post("/<webhook_endpoint_id>/enable")
@require("org.update")
def enable(webhook_endpoint_id):
    return _switch(webhook_endpoint_id, True)


@bp.post("/<webhook_endpoint_id>/disable")
@require("org.update")
def disable(webhook_endpoint_id):
    return _switch(webhook_endpoint_id, False)


@bp.route("/<webhook_endpoint_id>/delete", methods=["GET", "POST"])
@require("org.update")
def delete(webhook_endpoint_id):
    """Delete the endpoint once confirmed."""
    found = _endpoint(webhook_endpoint_id)
    if request.method == "GET":
        return confirmation(
            f"Delete the endpoint {found.url}?",
            [
                "Events are no longer sent to it, and its delivery log is deleted.",
                "To receive events there again, add the endpoint again: it gets a new secret.",
            ],
            "Delete endpoint",
            url_for("webhooks.endpoint", webhook_endpoint_id=found.id),
        )
    confirmed()
    services.remove(found)
    flash(f"Deleted the endpoint {found.url}.", "success")
    return redirect(url_for("webhooks.index"), 303)


@bp.post("/<webhook_endpoint_id>/test")
@require("org.update")
def send_test(webhook_endpoint_id):
    confirmed()
    found = _endpoint(webhook_endpoint_id)
    try:
        services.send_test(found)
    except services.EndpointError as exc:
        flash(str(exc), "error")
    else:
        flash("Test event queued: it shows in the delivery log below.", "success")
    return _to_endpoint(found)


def _delivery(found: WebhookEndpoint, webhook_delivery_id):
    return services.endpoint_delivery(found, webhook_delivery_id) or abort(404)


@bp.get("/<webhook_endpoint_id>/deliveries/<webhook_delivery_id>")
@require("org.update")
def delivery(webhook_endpoint_id, webhook_delivery_id):
    found = _endpoint(webhook_endpoint_id)
    shown = _delivery(found, webhook_delivery_id)
    return render_template(
        "webhooks/delivery.html",
        endpoint=found,
        delivery=shown,
        message=shown.message,
        attempts=services.attempts_of(shown),
        confirm_form=ConfirmForm(),
    )


@bp.post("/<webhook_endpoint_id>/deliveries/<webhook_delivery_id>/redeliver")
@require("org.update")
def redeliver(webhook_endpoint_id, webhook_delivery_id):
    confirmed()
    found = _endpoint(webhook_endpoint_id)
    try:
        services.redeliver(found, _delivery(found, webhook_delivery_id))
    except services.EndpointError as exc:
        flash(str(exc), "error")
    else:
        flash("Redelivery queued: it shows at the top of the delivery log.", "success")
    return _to_endpoint(found)
