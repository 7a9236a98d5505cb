"""Form fields many forms declare alike: a required name of visible characters, a long text
typed in a text area, the hidden record of what an edit page showed, and a select that renders
its options quickly."""

from __future__ import annotations

from markupsafe import Markup, escape
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length
from wtforms.widgets import Select

from app.core.edits import lf_newlines
from app.core.names import VisibleText


def name_field(label: str, required: str, max_length: int, too_long: str | None = None, **options):
    """A required one-line text (a name, a title, a key) of visible characters, ``max_length`` at most."""
    too_long = too_long or f"Keep it under {max_length}."
    validators = [DataRequired(message=required), Length(max=max_length, message=too_long), VisibleText()]
    return StringField(label, validators=validators, **options)


def long_text_field(label: str, max_length: int, too_long: str, required: str | None = None, **options):
    """A text area (optional unless ``required`` says what to ask for); its newlines stored as LF."""
    validators = [DataRequired(message=required)] if required else []
    validators.append(Length(max=max_length, message=too_long))
    return TextAreaField(label, validators=validators, filters=[lf_newlines], **options)


def loaded_field():
    """The values the edit page showed (``app.core.edits``)."""
    return HiddenField()


class QuickSelect(Select):
    """WTForms' ``Select`` widget, writing a plain option (a text value, no extra attributes)
    straight out rather than through ``html_params``: the same HTML, in a fraction of the time
    for a list of every member or label. Anything else is rendered by ``Select`` itself."""

    @classmethod
    def render_option(cls, choice, **kwargs):
        value = choice.value
        if kwargs or choice.render_kw or not isinstance(value, str):
            return super().render_option(choice, **kwargs)
        selected = "selected " if choice.selected else ""
        return Markup(f'<option {selected}value="{escape(value)}">{escape(choice.label or value)}</option>')
