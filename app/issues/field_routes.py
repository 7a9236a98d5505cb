"""Changing one field of an issue where its page shows it (state, priority, assignees, labels, due
date, estimate), each saved on its own through the edit form's own save (``edit_form.save_edit``:
the same history, notifications and protection, app/core/edits.py). A change of that field by
someone else since the page was loaded refuses the save (409: their value shown, the person's
choice kept); a change of another field is left as it is. htmx gets the issue's details back to
swap in; a plain form post goes back to the page."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.core import edits
from app.core.database import commit_now
from app.core.permissions import require
from app.extensions import db
from app.issues import bp, edit_form, page, page_forms, queries
from app.issues import services as issues
from app.issues.forms import FIELD_FORMS
from app.issues.queries import issue_or_404
from app.labels import services as label_services
from app.models.work import PRIORITY_LABELS
from app.projects.workflow import state_choices


@bp.post("/issues/<issue_ref>/fields/<field_name>")
@require("work.edit")
def edit_field(issue_ref, field_name):
    """Save the field ``field_name`` alone, if the person changed it; 409 if another change of it collides,
    422 for a value it cannot take; nothing else of the issue is written."""
    if field_name not in FIELD_FORMS:
        abort(404)
    issue = issue_or_404(issue_ref)
    form = page_forms.field_form(field_name, None, None, formdata=request.form)
    page_forms.fill_choices(form, *queries.filter_choices(), state_choices(issue.project.key))
    if not form.validate_on_submit():
        return _refused(issue_ref, form, field_name, 422)
    loaded = edits.decode(form.loaded.data, (field_name,))
    if field_name == "labels":
        try:
            page_forms.add_new_label(form)
        except label_services.LabelError as exc:
            db.session.rollback()
            form.new_label.errors.append(str(exc))
            return _refused(issue_ref, form, field_name, 422)
    submitted = edit_form.submitted_values(form, (field_name,))
    try:
        edit_form.save_edit(issue, current_user, {field_name: loaded[field_name]}, submitted)
    except edits.EditConflict as conflict:
        db.session.rollback()
        current = edit_form.edit_values(issue_or_404(issue_ref))
        again = page_forms.field_form(field_name, submitted[field_name], current[field_name])
        if field_name == "labels":  # its label went with the refused save: it is created on the next one
            again.new_label.data = form.new_label.data
        refused = page_forms.OpenField(field_name, again, page_forms.refusal_of(conflict))
        return _answer_refusal(issue_ref, refused, 409)
    except issues.IssueError as exc:
        db.session.rollback()
        form[field_name].errors.append(str(exc))
        return _refused(issue_ref, form, field_name, 422)
    if not request.headers.get("HX-Request"):
        flash("Saved.", "success")
        return redirect(url_for("issues.show", issue_ref=issue_ref), 303)
    # The details are read from the cache, whose versions move at commit: commit first.
    commit_now("the details in this answer must show the change")
    _, parts = page.parts_for(issue_ref)
    page.store_rendered_parts()
    return render_template(
        "issues/_fields_saved.html",
        own=page_forms.own_html(parts),
        main=parts["main"],
        said=saved_message(field_name, parts["shown"]),
    )


def _refused(issue_ref: str, form, name: str, status: int):
    """The field's form as submitted, open, saying why it was not saved."""
    visible = form[name].errors or (name == "labels" and form.new_label.errors)
    if visible:
        refusal = "Not saved: correct the value below."
    else:  # an out-of-date or incomplete form (its token, say)
        messages = [message for found in form.errors.values() for message in found]
        refusal = "Not saved: " + " ".join(messages)
    return _answer_refusal(issue_ref, page_forms.OpenField(name, form, refusal), status)


def _answer_refusal(issue_ref: str, open_field: page_forms.OpenField, status: int):
    """The details (htmx) or the whole page, with ``open_field``'s form open: a 4xx."""
    if request.headers.get("HX-Request"):
        _, parts = page.parts_for(issue_ref)
        page.store_rendered_parts()
        return page_forms.own_html(parts, open_field=open_field), status
    return page_forms.issue_page(issue_ref, status=status, open_field=open_field)


def saved_message(name: str, shown: dict) -> str:
    """What a screen reader says once the field ``name`` is saved: its name and its value now."""
    value = shown[name]
    if name == "state":
        text = shown["state_labels"].get(value, value)
    elif name == "priority":
        text = PRIORITY_LABELS.get(value, value)
    elif name in ("assignees", "labels"):
        text = ", ".join(each.name for each in value) or "none"
    else:
        text = "none" if value is None else str(value)
    return f"{edit_form.EDIT_FIELDS[name]} saved: {text}."
