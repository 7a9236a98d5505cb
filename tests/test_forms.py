"""The quick form widgets write exactly the HTML WTForms' own widgets write."""

from __future__ import annotations

from datetime import date

import pytest
from markupsafe import Markup
from wtforms import (
    DateField,
    Form,
    HiddenField,
    IntegerField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional
from wtforms.widgets import html_params

from app.core.fields import (
    QuickDateInput,
    QuickHiddenInput,
    QuickNumberInput,
    QuickSelect,
    QuickTextArea,
    QuickTextInput,
    quick_html_params,
)
from app.issues.forms import IssueEditForm

#: Attributes as templates pass them: names with underscores, booleans, text needing escapes.
ATTRIBUTES = [
    {},
    {"class_": "input", "aria_invalid": "true", "aria_describedby": "f-error"},
    {"autofocus": True, "disabled": False, "data_role": 'a "quoted" <value> & more'},
    {"placeholder": Markup('Already "safe" <b>markup</b>'), "for_": "x", "maxlength": 12},
]

_CHOICES = [
    SelectChoice("1", "Grace <b>\"G\"</b> & 'co'"),
    SelectChoice("a&b", None),
    SelectChoice("x", "Ex", render_kw={"disabled": True}),
    SelectChoice("3", "Three"),
]


def _forms(stock_field, quick_widget, data):
    class Stock(Form):
        f = stock_field()

    class Quick(Form):
        f = stock_field(widget=quick_widget)

    return Stock(data=data).f, Quick(data=data).f


FIELDS = {
    "text": (
        lambda **kw: StringField(validators=[DataRequired(), Length(min=2, max=80)], **kw),
        QuickTextInput(),
        {"f": 'Tom & "Jerry" <script>'},
    ),
    "text area": (
        lambda **kw: TextAreaField(validators=[Length(max=500)], **kw),
        QuickTextArea(),
        {"f": "line one\r\n<b>two</b> & three"},
    ),
    "hidden": (lambda **kw: HiddenField(**kw), QuickHiddenInput(), {"f": '{"a": "<b>"}'}),
    "date": (
        lambda **kw: DateField(validators=[Optional()], **kw),
        QuickDateInput(),
        {"f": date(2026, 11, 26)},
    ),
    "number": (
        lambda **kw: IntegerField(validators=[Optional(), NumberRange(min=0, max=1000)], **kw),
        QuickNumberInput(),
        {"f": 42},
    ),
    "select": (
        lambda **kw: SelectField(choices=_CHOICES, validate_choice=False, validators=[DataRequired()], **kw),
        QuickSelect(),
        {"f": "a&b"},
    ),
    "multiple select": (
        lambda **kw: SelectMultipleField(choices=_CHOICES, validate_choice=False, **kw),
        QuickSelect(True),
        {"f": ["1", "a&b"]},
    ),
}


@pytest.mark.parametrize("attributes", ATTRIBUTES)
@pytest.mark.parametrize("name", FIELDS)
def test_a_quick_widget_writes_what_wtforms_writes(name, attributes):
    """Each quick widget writes the same HTML as WTForms' own widget, attributes and escaping included."""
    make, widget, data = FIELDS[name]
    stock, quick = _forms(make, widget, data)
    assert str(quick(**attributes)) == str(stock(**attributes))


@pytest.mark.parametrize("attributes", ATTRIBUTES)
def test_quick_attributes_are_wtforms_attributes(attributes):
    """The attribute writer gives WTForms' html_params output for the same arguments."""
    assert quick_html_params(name="f", **attributes) == html_params(name="f", **attributes)


def test_the_issue_form_renders_with_the_quick_widgets(app):
    """Every field of the issue edit form is written by a quick widget."""
    with app.test_request_context():
        form = IssueEditForm(meta={"csrf": False})
    widgets = {name: type(field.widget).__name__ for name, field in form._fields.items()}
    assert all(widget.startswith("Quick") for widget in widgets.values()), widgets


#: The Jinja macro ``labelled_field`` replaced, as the reference for what it writes.
FIELD_MACRO = """{% macro field(f, autocomplete=None, autofocus=False, hint=None) -%}
  {% set described = [] %}
  {% if f.description or hint %}{% set _ = described.append(f.id ~ '-hint') %}{% endif %}
  {% if f.errors %}{% set _ = described.append(f.id ~ '-error') %}{% endif %}
  <div class="field{% if f.errors %} field--error{% endif %}">
    <label for="{{ f.id }}">{{ f.label.text }}</label>
    {% if f.description or hint -%}
    <p class="field__hint" id="{{ f.id }}-hint">{{ hint or f.description }}</p>
    {%- endif %}
    {% set attrs = {} %}
    {% if autocomplete %}{% set _ = attrs.update({'autocomplete': autocomplete}) %}{% endif %}
    {% if autofocus %}{% set _ = attrs.update({'autofocus': True}) %}{% endif %}
    {% if described %}{% set _ = attrs.update({'aria-describedby': described|join(' ')}) %}{% endif %}
    {% if f.errors %}{% set _ = attrs.update({'aria-invalid': 'true'}) %}{% endif %}
    {{ f(class_='input', **attrs) }}
    {% if f.errors %}
      <p class="field__error" id="{{ f.id }}-error">{{ f.errors|join(' ') }}</p>
    {% endif %}
  </div>
{%- endmacro %}"""


class Labelled(Form):
    title = StringField(
        "Title <&>", validators=[DataRequired(), Length(max=5)], description='Short "and" <sweet>'
    )
    state = SelectField("State", choices=[SelectChoice("a", "A & B"), SelectChoice("b", "<B>")])
    body = TextAreaField("Body", validators=[Optional()])
    due = DateField("Due", validators=[Optional()])


@pytest.mark.parametrize("data", [{}, {"title": "Too long a title", "state": "z", "due": "31-31-2026"}])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"autocomplete": "off", "autofocus": True},
        {"hint": "A hint <i>"},
        {"hint": Markup("<em>safe</em>")},
    ],
)
def test_a_labelled_field_is_what_the_form_macro_wrote(data, options):
    """Label, hint, errors and their links for screen readers come out as the former macro wrote them."""
    from jinja2 import Environment
    from werkzeug.datastructures import MultiDict

    from app.core.fields import labelled_field

    macro = Environment(autoescape=True).from_string(FIELD_MACRO).module.field
    form = Labelled(MultiDict(data))
    if data:
        assert not form.validate()
    for field in form:
        expected, written = str(macro(field, **options)), str(labelled_field(field, **options))
        assert " ".join(written.split()) == " ".join(expected.split()), field.name
