from flask_wtf import FlaskForm
from wtforms import RadioField, SelectChoice
from wtforms.validators import AnyOf, InputRequired

from app.core.fields import name_field
from app.models.labels import DEFAULT_LABEL_COLOR, LABEL_COLORS

COLOR_CHOICES = [SelectChoice(value, name.capitalize()) for name, value in LABEL_COLORS.items()]
_CHOOSE_COLOR = "Choose one of the colours shown."


def label_name_field(label: str = "Name", required: str = "Name the label."):
    return name_field(label, required, 50, "Keep it under 50 characters.")


class LabelForm(FlaskForm):
    name = label_name_field()
    color = RadioField(
        "Colour",
        choices=COLOR_CHOICES,
        default=DEFAULT_LABEL_COLOR,
        validate_choice=False,
        validators=[
            InputRequired(message=_CHOOSE_COLOR),
            AnyOf(tuple(LABEL_COLORS.values()), message=_CHOOSE_COLOR),
        ],
    )
