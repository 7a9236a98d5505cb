"""The operator pages' forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length


class SuspendForm(FlaskForm):
    reason = TextAreaField(
        "Reason",
        description="Mailed to the organization's owners.",
        validators=[DataRequired(message="Say why: the owners are told."), Length(max=500)],
    )


class ImpersonateForm(FlaskForm):
    reason = TextAreaField(
        "Reason",
        description="Recorded in the audit log of each of the person's organizations.",
        validators=[
            DataRequired(message="Say why: it is recorded in the person's organizations."),
            Length(max=500),
        ],
    )
