"""The Markdown preview of a description or comment being written: the text as its page will
show it (sanitized, with its mentions linked), without saving anything."""

from __future__ import annotations

from flask import render_template, request

from app.core.markdown import render_markdown
from app.core.permissions import require
from app.issues import bp, queries
from app.issues.page import mention_url_for

#: The fields that may be previewed, with the longest text each accepts (as their forms do).
PREVIEWED = {"description": 50_000, "body": 20_000}


@bp.post("/preview")
@require("work.edit")
def preview():
    """The HTML of the form's ``preview_field`` (htmx puts it under the field's Preview button)."""
    name = request.form.get("preview_field", "")
    if name not in PREVIEWED:
        return render_template("issues/_preview.html", problem="There is no such text to preview."), 400
    text = request.form.get(name, "")
    if len(text) > PREVIEWED[name]:
        problem = f"Too long to preview: at most {PREVIEWED[name]:,} characters."
        return render_template("issues/_preview.html", problem=problem)
    html = None
    if text.strip():
        _people, _labels, handles = queries.issue_page_choices()
        html = render_markdown(text, mention_url_for(handles))
    return render_template("issues/_preview.html", html=html)
