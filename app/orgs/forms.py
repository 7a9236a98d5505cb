from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Email, Length, Optional

from app.core.names import VisibleText
from app.core.permissions import ROLE_LABELS


def role_choices(roles):
    return [SelectChoice(role, ROLE_LABELS[role]) for role in roles]


class OrganizationForm(FlaskForm):
    name = StringField(
        "Organization name",
        validators=[
            DataRequired(message="Name your organization."),
            Length(max=100, message="Keep it under 100."),
            VisibleText(),
        ],
    )
    slug = StringField(
        "Address",
        description="Your organization's pages live at /<address>/. Leave empty to make one from the name.",
        validators=[Optional(), Length(max=40, message="Keep it under 40 characters."), VisibleText()],
    )


class OrganizationSettingsForm(FlaskForm):
    name = StringField(
        "Organization name",
        validators=[
            DataRequired(message="Name your organization."),
            Length(max=100, message="Keep it under 100."),
            VisibleText(),
        ],
    )
    #: The values the page showed (``app.core.edits``).
    loaded = HiddenField()


class InviteForm(FlaskForm):
    email = EmailField(
        "Email address",
        validators=[
            DataRequired(message="Enter the address to invite."),
            Email(message="Enter an email address like name@example.com.", check_deliverability=False),
            Length(max=254),
        ],
    )
    role = SelectField("Role", choices=[])


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=[])


class ConfirmForm(FlaskForm):
    """No fields: a button that needs its CSRF token."""
