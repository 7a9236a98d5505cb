from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField

from app.core.fields import loaded_field, long_text_field, name_field
from app.models.workflow import CATEGORY_LABELS, STARTED, STATE_NAME_LENGTH


def _name():
    return name_field("Name", "Name the project.", 100)


def _description():
    return long_text_field("Description", 5000, "Keep it under 5,000 characters.")


class ProjectForm(FlaskForm):
    name = _name()
    key = name_field(
        "Key",
        "Choose a key, like WEB.",
        10,
        "At most 10 characters.",
        description="Prefixes issue numbers, like WEB-42. 2 to 10 capital letters or digits.",
    )
    description = _description()


class ProjectSettingsForm(FlaskForm):
    name = _name()
    description = _description()
    loaded = loaded_field()


class StateForm(FlaskForm):
    """A new workflow state: its name and its category (fields prefixed ``state-``: the settings
    page has the project's own name field)."""

    name = name_field("Name", "Name the state.", STATE_NAME_LENGTH)
    category = SelectField(
        "Category",
        choices=[SelectChoice(key, label) for key, label in CATEGORY_LABELS.items()],
        default=STARTED,
    )


class RenameStateForm(FlaskForm):
    name = name_field("Name", "Name the state.", STATE_NAME_LENGTH)


class StateMoveForm(FlaskForm):
    direction = SelectField("Direction", choices=[SelectChoice("up", "Up"), SelectChoice("down", "Down")])
