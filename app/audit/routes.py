"""The audit log page of an organization's settings, and its CSV and JSON Lines exports
(owners and admins: ``audit.view``)."""

from __future__ import annotations

from flask import Response, current_app, render_template, request

from app.audit import bp, exports, log
from app.core import audit
from app.core.permissions import require
from app.core.tenancy import require_tenant, tenant_context
from app.models.base import utcnow
from app.orgs.context import current_access


@bp.get("/audit")
@require("audit.view")
def index():
    """The log, newest first, filtered by actor, action and dates, a page at a time."""
    filters = log.AuditFilters.from_args(request.args)
    return render_template(
        "audit/index.html",
        filters=filters,
        page=log.log_page(filters),
        actors=log.actor_choices(),
        actions=log.action_choices(),
        describe=log.describe,
        action_label=log.action_label,
    )


def _download(kind: str) -> Response:
    """The filtered log as a file, streamed a batch at a time as it is read.

    The body is written after the request has ended (and committed the download's own entry).
    Each batch is read and written in an app context of its own, as this organization, left
    before the batch is sent: a body read slowly, or never, holds no context or session open."""
    header, lines, mimetype = exports.FORMATS[kind]
    filters = log.AuditFilters.from_args(request.args)
    audit.record("audit.exported", format=kind, filters=filters.query_args())
    app, tenant_id = current_app._get_current_object(), require_tenant()

    def generate():
        yield header()
        before = None
        while True:
            with app.app_context(), tenant_context(tenant_id):
                batch = log.entries_before(filters, before)
                chunk = lines(batch)
            if chunk:
                yield chunk
            if len(batch) < log.EXPORT_BATCH:
                return
            before = batch[-1].sequence

    name = f"{current_access().slug}-audit-log-{utcnow():%Y-%m-%d}.{kind}"
    response = Response(generate(), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.get("/audit.csv")
@require("audit.view")
def export_csv():
    return _download("csv")


@bp.get("/audit.jsonl")
@require("audit.view")
def export_jsonl():
    return _download("jsonl")
