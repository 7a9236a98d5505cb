from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional

from app.core import edits
from app.core.confirm import ConfirmForm  # noqa: F401 (the pages' forms name it here)
from app.core.fields import loaded_field, name_field
from app.core.names import VisibleText
from app.core.permissions import ROLE_LABELS
from app.models.orgs import AUDIT_RETENTION_MAX_DAYS, AUDIT_RETENTION_MIN_DAYS


def role_choices(roles):
    return [SelectChoice(role, ROLE_LABELS[role]) for role in roles]


def _organization_name():
    return name_field("Organization name", "Name your organization.", 100)


class OrganizationForm(FlaskForm):
    name = _organization_name()
    slug = StringField(
        "Address",
        description="Your organization's pages live at /<address>/. Leave empty to make one from the name.",
        validators=[Optional(), Length(max=40, message="Keep it under 40 characters."), VisibleText()],
    )


_RETENTION_RANGE = NumberRange(
    AUDIT_RETENTION_MIN_DAYS,
    AUDIT_RETENTION_MAX_DAYS,
    f"Choose between {AUDIT_RETENTION_MIN_DAYS} and {AUDIT_RETENTION_MAX_DAYS} days.",
)


class OrganizationSettingsForm(FlaskForm):
    name = _organization_name()
    audit_retention_days = IntegerField(
        "Keep audit log entries for (days)",
        description=f"At least {AUDIT_RETENTION_MIN_DAYS} days; older entries are deleted each day. "
        "Left empty, it stays as it is.",
        validators=[Optional(), _RETENTION_RANGE],
    )
    loaded = loaded_field()


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


class DeleteOrganizationForm(FlaskForm):
    name = StringField(
        "Organization name",
        description="Type the organization's name to confirm.",
        validators=[DataRequired(message="Type the organization's name.")],
    )
    password = PasswordField("Your password", validators=[DataRequired(message="Enter your password.")])
    code = StringField(
        "Two-factor code",
        description="From your authenticator app, or one of your recovery codes.",
        validators=[Optional(), Length(max=32)],
    )


class TwoFactorPolicyForm(FlaskForm):
    """The organization's "require two-factor" policy (its settings page)."""

    required = BooleanField("Require two-factor authentication of every member")
    grace_days = IntegerField(
        "Grace period (days)",
        default=0,
        description="Members without two-factor keep their access this many days; 0 asks them at once.",
        validators=[NumberRange(min=0, max=365, message="Between 0 and 365 days.")],
    )


def settings_form(values: dict, loaded: dict) -> OrganizationSettingsForm:
    """The settings form showing ``values``, loaded with ``loaded`` (``app.core.edits``)."""
    form = OrganizationSettingsForm(formdata=None, data=values)
    form.loaded.data = edits.encode(loaded)
    return form


def policy_form(values: dict) -> TwoFactorPolicyForm:
    """The two-factor policy form showing the saved ``values``."""
    return TwoFactorPolicyForm(formdata=None, data=values, prefix="policy")
