"""The labels settings screen: every member sees the labels and how many issues use each; owners
and admins create, rename, recolour and delete them (members create them from an issue's form)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from app.core.permissions import require
from app.extensions import db
from app.labels import bp
from app.labels import services as labels
from app.labels.forms import LabelForm
from app.orgs.forms import ConfirmForm


def _index_page(form=None, status=200):
    return render_template(
        "labels/index.html", uses=labels.labels_in_use(), form=form or LabelForm(formdata=None)
    ), status


@bp.get("")
@require("work.view")
def index():
    return _index_page()


@bp.post("")
@require("labels.manage")
def create():
    form = LabelForm()
    if form.validate_on_submit():
        try:
            label = labels.create_label(form.name.data, form.color.data)
        except labels.LabelError as exc:
            db.session.rollback()
            form.name.errors.append(str(exc))
        else:
            flash(f"Label “{label.name}” created.", "success")
            return redirect(url_for("labels.index"), 303)
    return _index_page(form, 422)


@bp.route("/<uuid:label_id>", methods=["GET", "POST"])
@require("labels.manage")
def edit(label_id):
    """Rename and recolour a label."""
    label = labels.label_or_404(label_id)
    if request.method == "GET":
        form = LabelForm(formdata=None, obj=label)
        return render_template("labels/edit.html", label=label, form=form)
    form = LabelForm()
    if form.validate_on_submit():
        try:
            changed = labels.update_label(label, form.name.data, form.color.data)
        except labels.LabelError as exc:
            db.session.rollback()
            form.name.errors.append(str(exc))
        else:
            if changed:
                flash(f"Label “{label.name}” saved.", "success")
            return redirect(url_for("labels.index"), 303)
    label = labels.label_or_404(label_id)
    return render_template("labels/edit.html", label=label, form=form), 422


@bp.route("/<uuid:label_id>/delete", methods=["GET", "POST"])
@require("labels.manage")
def delete(label_id):
    """Delete a label, once confirmed: the page says how many issues it will be taken off."""
    label = labels.label_or_404(label_id)
    if request.method == "GET":
        return render_template(
            "labels/delete.html", label=label, issues=labels.issue_count(label), confirm_form=ConfirmForm()
        )
    if not ConfirmForm().validate_on_submit():
        abort(400)
    name = label.name
    count = labels.delete_label(label)
    taken_off = f" It was taken off {count} issue{'s' if count != 1 else ''}." if count else ""
    flash(f"Label “{name}” deleted.{taken_off}", "success")
    return redirect(url_for("labels.index"), 303)
