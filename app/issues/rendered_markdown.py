"""The stored HTML of issues' descriptions and comments, written for rows that lack it."""

from __future__ import annotations

from sqlalchemy import func, or_, select, update

from app.core.markdown import RENDERER_VERSION, render_for_storage
from app.core.tenancy import require_tenant
from app.extensions import db
from app.models.work import RENDERED


def store_rendered_markdown(batch: int = 500) -> int:
    """Store the HTML of up to ``batch`` of the organization's descriptions and of its comments
    whose stored copy is missing (rows from before it was stored) or made by another renderer
    version; returns how many rows were written (0: none left). Pages render those rows on
    read meanwhile, to the same HTML, so no cached page changes."""
    tenant_id, written = require_tenant(), 0
    for model, columns in RENDERED.items():
        for source, (html, version) in columns.items():
            written += _store_rendered(model.__table__, source, html, version, tenant_id, batch)
    return written


def _store_rendered(table, source: str, html: str, version: str, tenant_id, batch: int) -> int:
    stale = or_(table.c[html].is_(None), func.coalesce(table.c[version], 0) != RENDERER_VERSION)
    statement = select(table.c.id, table.c[source]).where(table.c.tenant_id == tenant_id, stale)
    written = 0
    for row_id, text in db.session.execute(statement.order_by(table.c.id).limit(batch)).all():
        result = db.session.execute(
            update(table)
            .where(table.c.tenant_id == tenant_id, table.c.id == row_id)
            .values({html: render_for_storage(text), version: RENDERER_VERSION})
        )
        written += result.rowcount
    return written
