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
