"""Form fields many forms declare alike: a required name of visible characters, a long text
typed in a text area, the hidden record of what an edit page showed; and widgets that write
WTForms' HTML quickly."""

from __future__ import annotations

from markupsafe import Markup, escape
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length
from wtforms.widgets import DateInput, HiddenInput, NumberInput, Select, TextArea, TextInput
from wtforms.widgets.core import clean_key

from app.core.edits import lf_newlines
from app.core.names import VisibleText


def name_field(label: str, required: str, max_length: int, too_long: str | None = None, **options):
    """A required one-line text (a name, a title, a key) of visible characters, ``max_length`` at most."""
    too_long = too_long or f"Keep it under {max_length}."
    validators = [DataRequired(message=required), Length(max=max_length, message=too_long), VisibleText()]
    options.setdefault("widget", QuickTextInput())
    return StringField(label, validators=validators, **options)


def long_text_field(label: str, max_length: int, too_long: str, required: str | None = None, **options):
    """A text area (optional unless ``required`` says what to ask for); its newlines stored as LF."""
    validators = [DataRequired(message=required)] if required else []
    validators.append(Length(max=max_length, message=too_long))
    options.setdefault("widget", QuickTextArea())
    return TextAreaField(label, validators=validators, filters=[lf_newlines], **options)


def loaded_field():
    """The values the edit page showed (``app.core.edits``)."""
    return HiddenField(widget=QuickHiddenInput())


# --- widgets: WTForms' HTML, written quickly -------------------------------------------------
#
# WTForms writes each attribute of a field with ``Markup.format``, a run of Python's
# ``string.Formatter``: about half the time of rendering a form such as an issue's edit form.
# These widgets write the same HTML (tests/test_forms.py compares them with WTForms' own).


def quick_html_params(**kwargs) -> Markup:
    """``wtforms.widgets.html_params``: the same attributes, in the same order and escaping."""
    params = []
    for key, value in sorted(kwargs.items()):
        key = clean_key(key)
        if value is True:
            params.append(key)
        elif value is not False:
            params.append(f'{escape(key)}="{str(escape(value)).replace(chr(34), "&quot;")}"')
    return Markup(" ".join(params))


def _validation_attributes(field, names, kwargs) -> None:
    """The attributes the field's validators set (``required``, ``maxlength`` …), as WTForms adds them."""
    flags = getattr(getattr(field, "flags", None), "__dict__", {})  # the flags set (a missing one reads None)
    for name in names:
        if name not in kwargs and name in flags:
            kwargs[name] = flags[name]


class QuickTextInput(TextInput):
    html_params = staticmethod(quick_html_params)


class QuickHiddenInput(HiddenInput):
    html_params = staticmethod(quick_html_params)


class QuickDateInput(DateInput):
    html_params = staticmethod(quick_html_params)


class QuickNumberInput(NumberInput):
    html_params = staticmethod(quick_html_params)


class QuickTextArea(TextArea):
    def __call__(self, field, **kwargs):
        kwargs.setdefault("id", field.id)
        _validation_attributes(field, self.validation_attrs, kwargs)
        params = quick_html_params(name=field.name, **kwargs)
        return Markup(f"<textarea {params}>\r\n{escape(field._value())}</textarea>")


class QuickSelect(Select):
    """WTForms' ``Select`` widget (without option groups), writing a plain option (a text value,
    no extra attributes) straight out: the same HTML, in a fraction of the time for a list of
    every member or label. Anything else is rendered by ``Select`` itself."""

    def __call__(self, field, **kwargs):
        if field.has_groups():
            return super().__call__(field, **kwargs)
        kwargs.setdefault("id", field.id)
        if self.multiple:
            kwargs["multiple"] = True
        _validation_attributes(field, self.validation_attrs, kwargs)
        options = "".join(self.render_option(choice) for choice in field._iter_choices_normalized())
        return Markup(f"<select {quick_html_params(name=field.name, **kwargs)}>{options}</select>")

    @classmethod
    def render_option(cls, choice, **kwargs):
        value = choice.value
        if kwargs or choice.render_kw or not isinstance(value, str):
            return super().render_option(choice, **kwargs)
        selected = "selected " if choice.selected else ""
        return Markup(f'<option {selected}value="{escape(value)}">{escape(choice.label or value)}</option>')


def labelled_field(field, autocomplete=None, autofocus=False, hint=None) -> Markup:
    """A form field with its label, its hint and its errors, linked for screen readers (the
    templates' ``field(form.title, autocomplete=…, autofocus=…, hint=…)``).

    Written here rather than as a Jinja macro: an issue's edit form has eight fields, and a
    macro call costs Jinja a new context each time.
    """
    field_id = escape(field.id)
    note = hint or field.description
    errors = field.errors
    described = [f"{field.id}-hint"] if note else []
    attributes = {}
    if autocomplete:
        attributes["autocomplete"] = autocomplete
    if autofocus:
        attributes["autofocus"] = True
    if errors:
        described.append(f"{field.id}-error")
    if described:
        attributes["aria-describedby"] = " ".join(described)
    if errors:
        attributes["aria-invalid"] = "true"
    if field.type == "BooleanField":  # a checkbox sits in its label, the hint below
        lines = [
            f'<div class="field field--checkbox{" field--error" if errors else ""}">',
            f'  <label for="{field_id}">{field(**attributes)} {escape(field.label.text)}</label>',
        ]
        if note:
            lines.append(f'  <p class="field__hint" id="{field_id}-hint">{escape(note)}</p>')
    else:
        lines = [
            f'<div class="field{" field--error" if errors else ""}">',
            f'  <label for="{field_id}">{escape(field.label.text)}</label>',
        ]
        if note:
            lines.append(f'  <p class="field__hint" id="{field_id}-hint">{escape(note)}</p>')
        lines.append(f"  {field(class_='input', **attributes)}")
    if errors:
        lines.append(f'  <p class="field__error" id="{field_id}-error">{Markup(" ").join(errors)}</p>')
    lines.append("</div>")
    return Markup("\n  ".join(lines))
