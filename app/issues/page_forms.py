"""The person's own part of an issue's page: for someone who may edit, the details with a form to
change each field where it is shown, and the edit form of all the fields; and the page around
them after a refused save. Used by the issue routes and the field routes alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask import render_template
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import SelectChoice

from app.auth.identity import signed_in
from app.core import edits
from app.core.permissions import can
from app.issues import page
from app.issues.forms import FIELD_FORMS, CommentForm, IssueEditForm
from app.labels import services as label_services
from app.orgs.forms import ConfirmForm


@dataclass
class OpenField:
    """A field's form shown open after its save was refused, saying why (``refusal``)."""

    name: str
    form: FlaskForm
    refusal: str


def _form_data(values: dict) -> dict:
    """``edit_form.edit_values`` as a form's data."""
    data = dict(values)
    if "priority" in data:
        data["priority"] = str(data["priority"])
    if data.get("due_date"):
        data["due_date"] = date.fromisoformat(data["due_date"])
    return data


def whole_form(values: dict, loaded: dict) -> IssueEditForm:
    """The edit form showing ``values``, carrying ``loaded`` (both as ``edit_form.edit_values``)."""
    form = IssueEditForm(formdata=None, data=_form_data(values))
    form.loaded.data = edits.encode(loaded)
    return form


def field_form(name: str, value, loaded, formdata=None) -> FlaskForm:
    """The form of the field ``name`` alone, showing ``value`` and carrying ``loaded`` (its value
    as loaded); with ``formdata``, the form as submitted."""
    if formdata is not None:
        form = FIELD_FORMS[name](formdata=formdata)
    else:
        form = FIELD_FORMS[name](formdata=None, data=_form_data({name: value}))
        form.loaded.data = edits.encode({name: loaded})
    for each in form:  # ids of their own: the edit form of all the fields is on the page too
        each.id = f"edit-{name}" + ("-field" if each.name == name else f"-{each.name}")
    if name == "labels":
        form.labels.render_kw = {**form.labels.render_kw, "data-picker-create": form.new_label.id}
    return form


def fill_choices(form, people, labels, states) -> None:
    """The choices of the form's state (its project's ``states``, (key, name)), assignees and
    labels, if it has them."""
    if "state" in form:
        form.state.choices = [SelectChoice(key, name) for key, name in states]
    if "assignees" in form:
        form.assignees.choices = [SelectChoice(person.id, person.name) for person in people]
    if "labels" in form:
        form.labels.choices = [SelectChoice(label.id, label.name) for label in labels]


def add_new_label(form) -> None:
    """The label typed in the form's "new label" field, created if need be, among its chosen labels."""
    name = label_services.clean_name(form.new_label.data or "")
    if name:
        label_id = str(label_services.label_for_issue(name).id)
        form.labels.data = [*(form.labels.data or []), label_id]


def refusal_of(conflict: edits.EditConflict) -> str:
    """What a person is told when their change of one field met another change of it."""
    (other,) = conflict.conflicts
    return (
        f"Not saved: {other.by or 'someone else'} changed the {other.label.lower()} to “{other.theirs}” "
        f"since you opened the page. Your choice, “{other.yours}”, is kept below: save again to keep it."
    )


def own_html(parts: dict, form=None, conflict=None, open_field: OpenField | None = None) -> Markup:
    """The issue's details with a form per field, and the edit form of all the fields (``form``
    when given, refused for ``conflict``); empty for someone who may not edit."""
    if not can("work.edit"):
        return Markup("")
    values = parts["values"]
    forms = {name: field_form(name, values[name], values[name]) for name in FIELD_FORMS}
    if open_field is not None:
        forms[open_field.name] = open_field.form
    if form is None:
        form = whole_form(values, values)
    for each in (form, *forms.values()):
        fill_choices(each, parts["people"], parts["labels"], parts["states"])
    details = page.render_details(
        parts["shown"],
        ref=parts["ref"],
        forms=forms,
        open_field=open_field and open_field.name,
        refusal=open_field and open_field.refusal,
    )
    whole = render_template("issues/_edit_form.html", form=form, conflict=conflict, ref=parts["ref"])
    return Markup(f'<div id="issue-fields">{details}\n    {whole}</div>')


def show(parts: dict, watch: dict, own: Markup, comment_form=None, notice=None) -> str:
    """The issue's page around ``parts`` (or the slots of its frame, ``page._frame_slots``)."""
    return render_template(
        "issues/show.html",
        parts={
            **parts,
            "main": Markup(parts["main"]),
            "details": Markup("") if can("work.edit") else Markup(page.details_of(parts)),
        },
        edit_form=own,
        comment_form=comment_form or CommentForm(),
        watch=watch,
        confirm_form=ConfirmForm(),
        notice=notice,
    )


def issue_page(issue_ref, status=200, comment_form=None, notice=None, **own):
    """The issue's page after a refused form: its shared parts (cached) around this viewer's own
    forms and buttons (``own``: ``own_html``'s arguments)."""
    _, parts = page.parts_for(issue_ref)
    page.store_rendered_parts()
    watch = page.watch_state(str(signed_in().user_id) in parts["watchers"])
    return show(parts, watch, own_html(parts, **own), comment_form, notice), status
