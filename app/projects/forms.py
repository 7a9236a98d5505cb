from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from app.core.edits import lf_newlines
from app.core.names import VisibleText


class ProjectForm(FlaskForm):
    name = StringField(
        "Name",
        validators=[
            DataRequired(message="Name the project."),
            Length(max=100, message="Keep it under 100."),
            VisibleText(),
        ],
    )
    key = StringField(
        "Key",
        description="Prefixes issue numbers, like WEB-42. 2 to 10 capital letters or digits.",
        validators=[
            DataRequired(message="Choose a key, like WEB."),
            Length(max=10, message="At most 10 characters."),
            VisibleText(),
        ],
    )
    description = TextAreaField(
        "Description",
        validators=[Length(max=5000, message="Keep it under 5,000 characters.")],
        filters=[lf_newlines],
    )


class ProjectSettingsForm(FlaskForm):
    name = StringField(
        "Name",
        validators=[
            DataRequired(message="Name the project."),
            Length(max=100, message="Keep it under 100."),
            VisibleText(),
        ],
    )
    description = TextAreaField(
        "Description",
        validators=[Length(max=5000, message="Keep it under 5,000 characters.")],
        filters=[lf_newlines],
    )
    #: The values the page showed (``app.core.edits``).
    loaded = HiddenField()
