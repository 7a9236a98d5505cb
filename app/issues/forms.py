from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    HiddenField,
    IntegerField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

from app.core.edits import lf_newlines
from app.core.names import VisibleText
from app.models.work import PRIORITY_LABELS, STATE_LABELS, due_date_problem

STATE_CHOICES = [SelectChoice(value, label) for value, label in STATE_LABELS.items()]
PRIORITY_CHOICES = [SelectChoice(str(k), v) for k, v in sorted(PRIORITY_LABELS.items(), reverse=True)]


def due_date_in_range(form, field):
    if problem := due_date_problem(field.data):
        raise ValidationError(problem)


class IssueForm(FlaskForm):
    title = StringField(
        "Title",
        validators=[
            DataRequired(message="Give the issue a title."),
            Length(max=255, message="At most 255."),
            VisibleText(),
        ],
    )
    description = TextAreaField(
        "Description",
        description="Markdown. Mention people with @ and the first part of their email address.",
        validators=[Length(max=50000, message="Keep it under 50,000 characters.")],
        filters=[lf_newlines],
    )
    state = SelectField("State", choices=STATE_CHOICES, default="todo")
    priority = SelectField("Priority", choices=PRIORITY_CHOICES, default="0")
    assignees = SelectMultipleField("Assignees", choices=[], validate_choice=False)
    labels = SelectMultipleField("Labels", choices=[], validate_choice=False)
    due_date = DateField("Due date", validators=[Optional(), due_date_in_range])
    estimate = IntegerField(
        "Estimate (points)",
        validators=[Optional(), NumberRange(min=0, max=1000, message="Between 0 and 1000.")],
    )


class IssueEditForm(IssueForm):
    """The issue form on an existing issue: it carries the values it was loaded with."""

    loaded = HiddenField()


class CommentForm(FlaskForm):
    body = TextAreaField(
        "Comment",
        validators=[
            DataRequired(message="Write something before sending."),
            Length(max=20000, message="Too long."),
        ],
        filters=[lf_newlines],
    )


class MoveForm(FlaskForm):
    state = SelectField("Move to", choices=STATE_CHOICES)
    #: The column the card was in when the page was loaded.
    from_state = HiddenField()
