"""The form of a webhook endpoint: its URL, a description and the events it wants."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from app.webhooks.events import EVENT_TYPES


class EndpointForm(FlaskForm):
    url = StringField(
        "Endpoint URL",
        description="Where Worklane POSTs the events, such as https://example.com/webhooks/worklane. "
        "It must be a public address.",
        validators=[DataRequired(message="Enter the URL to send events to."), Length(max=2000)],
        render_kw={"autocomplete": "off", "spellcheck": "false", "inputmode": "url"},
    )
    description = StringField(
        "Description", description="What it is for (optional).", validators=[Optional(), Length(max=200)]
    )
    event_types = SelectMultipleField(
        "Events",
        choices=[SelectChoice(name, f"{name} — {meaning}") for name, meaning in EVENT_TYPES.items()],
        validate_choice=True,
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )

    def validate_event_types(self, field) -> None:
        if not field.data:
            raise ValidationError("Choose at least one event.")
