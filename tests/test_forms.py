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
