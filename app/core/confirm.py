"""Destructive actions ask first: their URL answers GET with a page that says what will happen,
a button that does it (a POST to the same URL) and a way back."""

from __future__ import annotations

from flask import abort, render_template
from flask_wtf import FlaskForm


class ConfirmForm(FlaskForm):
    """No fields: a button that needs its CSRF token."""


def confirmation(question: str, consequences: list[str], button: str, cancel: str):
    """The page asking ``question``: what happens (``consequences``), ``button`` to go ahead,
    Cancel back to ``cancel``."""
    return render_template(
        "confirm.html",
        question=question,
        consequences=consequences,
        button=button,
        cancel=cancel,
        confirm_form=ConfirmForm(),
    )


def confirmed() -> None:
    """Refuse (400) a POST without its form's CSRF token."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
