from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    HiddenField,
    IntegerField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import Length, NumberRange, Optional, ValidationError

from app.core.fields import (
    QuickDateInput,
    QuickNumberInput,
    QuickSelect,
    QuickTextInput,
    loaded_field,
    long_text_field,
    name_field,
)
from app.core.names import VisibleText
from app.models.work import DUE_DATE_MAX, DUE_DATE_MIN, PRIORITY_LABELS, due_date_problem

PRIORITY_CHOICES = [SelectChoice(str(k), v) for k, v in sorted(PRIORITY_LABELS.items(), reverse=True)]


def due_date_in_range(form, field):
    if problem := due_date_problem(field.data):
        raise ValidationError(problem)


PICKER = {"data-picker": ""}


class IssueForm(FlaskForm):
    title = name_field("Title", "Give the issue a title.", 255, "At most 255.")
    description = long_text_field(
        "Description",
        50000,
        "Keep it under 50,000 characters.",
        description="Markdown. Mention people with @ and the first part of their email address.",
    )
    #: The project's states (``app.projects.workflow.state_choices``), set by the view.
    state = SelectField("State", choices=[], widget=QuickSelect())
    priority = SelectField("Priority", choices=PRIORITY_CHOICES, default="0", widget=QuickSelect())
    # ``data-picker``: app/static/js/picker.js shows these as searchable pickers.
    assignees = SelectMultipleField(
        "Assignees", choices=[], validate_choice=False, widget=QuickSelect(True), render_kw=PICKER
    )
    labels = SelectMultipleField(
        "Labels",
        choices=[],
        validate_choice=False,
        widget=QuickSelect(True),
        render_kw={**PICKER, "data-picker-create": "new_label"},  # a name found nowhere is created
    )
    #: A label to add that is not in the list yet: created with the issue's save (or the existing
    #: label of that name, whatever its case, is added).
    new_label = StringField(
        "New label",
        description="Not in the list? Type its name: it is created and added when you save.",
        validators=[Optional(), Length(max=50, message="Keep it under 50 characters."), VisibleText()],
        widget=QuickTextInput(),
    )
    due_date = DateField(
        "Due date",
        validators=[Optional(), due_date_in_range],
        widget=QuickDateInput(),
        # The date picker keeps to the range the server accepts.
        render_kw={"min": DUE_DATE_MIN.isoformat(), "max": DUE_DATE_MAX.isoformat()},
    )
    estimate = IntegerField(
        "Estimate (points)",
        validators=[Optional(), NumberRange(min=0, max=1000, message="Between 0 and 1000.")],
        widget=QuickNumberInput(),
    )


class IssueEditForm(IssueForm):
    """The issue form on an existing issue: it carries the values it was loaded with."""

    loaded = loaded_field()


def _field_form(name: str) -> type[FlaskForm]:
    """A form of one field of the issue form (the same field: its choices, limits and checks),
    with the value it was loaded with; the labels' form also takes a new label's name."""
    fields = {name: getattr(IssueForm, name), "loaded": loaded_field()}
    if name == "labels":
        fields["new_label"] = IssueForm.new_label
    return type(f"Issue{name.title().replace('_', '')}Form", (FlaskForm,), fields)


#: The fields of an issue changed one at a time where its page shows them, each with a form of
#: its own.
FIELD_FORMS = {
    name: _field_form(name) for name in ("state", "priority", "assignees", "labels", "due_date", "estimate")
}


class CommentForm(FlaskForm):
    body = long_text_field("Comment", 20000, "Too long.", required="Write something before sending.")


class MoveForm(FlaskForm):
    #: The project's states, set by the view.
    state = SelectField("Move to", choices=[])
    #: The column the card was in when the page was loaded.
    from_state = HiddenField()
