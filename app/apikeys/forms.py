"""The forms of API keys: a new key, and the organization's longest key lifetime."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectChoice, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, NumberRange

from app.apikeys.scopes import SCOPES
from app.apikeys.services import LIFETIMES, MAX_DAYS_LIMIT


class NewKeyForm(FlaskForm):
    name = StringField(
        "Name",
        description="What uses the key, such as “Release script” or “CI”.",
        validators=[DataRequired(message="Give the key a name that says what uses it."), Length(max=100)],
        render_kw={"autocomplete": "off"},
    )
    scopes = SelectMultipleField(
        "Scopes",
        choices=[SelectChoice(scope, label) for scope, (label, _permission) in SCOPES.items()],
        validators=[DataRequired(message="Choose at least one scope.")],
    )
    days = SelectField("Expires after", coerce=int)

    def offer_lifetimes(self, max_days: int) -> None:
        days = sorted({d for d in LIFETIMES if d <= max_days} | {max_days})
        self.days.choices = [SelectChoice(d, f"{d} days") for d in days]
        if self.days.data is None:
            self.days.data = min(90, max_days) if 90 in days or max_days < 90 else days[-1]


class MaxDaysForm(FlaskForm):
    max_days = IntegerField(
        "Longest key lifetime (days)",
        description="New keys cannot be made to live longer. Keys made before keep their expiry.",
        validators=[
            NumberRange(min=1, max=MAX_DAYS_LIMIT, message=f"Choose between 1 and {MAX_DAYS_LIMIT} days.")
        ],
    )
