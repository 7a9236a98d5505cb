"""The audit log page of an organization's settings, and its CSV and JSON Lines exports
(owners and admins: ``audit.view``)."""

from __future__ import annotations

from flask import Response, render_template, request, stream_with_context

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


def _download(kind: str, lines, mimetype: str) -> Response:
    """The filtered log as a file, streamed as it is read, as this organization."""
    filters = log.AuditFilters.from_args(request.args)
    audit.record("audit.exported", format=kind, filters=filters.query_args())
    tenant_id = require_tenant()

    def generate():
        with tenant_context(tenant_id):
            yield from lines(log.filtered_entries(filters))

    name = f"{current_access().slug}-audit-log-{utcnow():%Y-%m-%d}.{kind}"
    response = Response(stream_with_context(generate()), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.get("/audit.csv")
@require("audit.view")
def export_csv():
    return _download("csv", exports.csv_lines, "text/csv")


@bp.get("/audit.jsonl")
@require("audit.view")
def export_jsonl():
    return _download("jsonl", exports.jsonl_lines, "application/jsonl")
