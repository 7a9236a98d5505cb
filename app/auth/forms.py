from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    HiddenField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, Email, EqualTo, Length, ValidationError

from app.auth.passwords import AcceptablePassword
from app.core.dates import is_time_zone, time_zone_names
from app.core.edits import encode
from app.core.fields import loaded_field, name_field
from app.core.security import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH

#: Every field that sets a new password (sign-up, invitation, reset, change).
_password = [
    DataRequired(message="Enter a password."),
    Length(
        min=PASSWORD_MIN_LENGTH,
        max=PASSWORD_MAX_LENGTH,
        message=f"Use at least {PASSWORD_MIN_LENGTH} characters (a passphrase is best).",
    ),
    AcceptablePassword(),
]
_email = [
    DataRequired(message="Enter your email address."),
    Email(message="Enter an email address like name@example.com.", check_deliverability=False),
    Length(max=254, message="That address is too long."),
]
_TOO_LONG = "Keep it under 100 characters."


def _name(label: str):
    return name_field(label, "Enter your name.", 100, _TOO_LONG)


def _browser_time_zone():
    """Filled by app.js with the browser's time zone; the account's zone when valid, else UTC."""
    return HiddenField(render_kw={"data-browser-time-zone": True})


def _repeated_password():
    return PasswordField(
        "Repeat the new password", validators=[EqualTo("password", message="The two passwords differ.")]
    )


class SignUpForm(FlaskForm):
    name = _name("Your name")
    email = EmailField("Work email", validators=_email)
    password = PasswordField("Password", validators=_password)
    organization = name_field(
        "Organization name", "Name your organization (you can change it later).", 100, _TOO_LONG
    )
    time_zone = _browser_time_zone()


class InvitedSignUpForm(FlaskForm):
    name = _name("Your name")
    password = PasswordField("Password", validators=_password)
    time_zone = _browser_time_zone()


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=_email)
    password = PasswordField("Password", validators=[DataRequired(message="Enter your password.")])


class ForgotPasswordForm(FlaskForm):
    email = EmailField("Email", validators=_email)


class ResetPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=_password)
    confirm = _repeated_password()


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired(message="Enter it.")])
    password = PasswordField("New password", validators=_password)
    confirm = _repeated_password()


class ProfileForm(FlaskForm):
    name = _name("Name")
    loaded = loaded_field()


class TimeZoneField(SelectField):
    """An IANA time zone; anything else is a clear form error."""

    def pre_validate(self, form):
        if not is_time_zone(self.data):
            raise ValidationError("Choose a time zone from the list.")


class TimeZoneForm(FlaskForm):
    time_zone = TimeZoneField(
        "Time zone",
        choices=lambda: [SelectChoice(name, name.replace("_", " ")) for name in time_zone_names()],
        description="Times on every page and in your email are shown in this zone.",
        render_kw={"data-searchable": "time zones"},
    )


class ChangeEmailForm(FlaskForm):
    email = EmailField("New email address", validators=_email)
    password = PasswordField("Your password", validators=[DataRequired(message="Enter your password.")])


class DeleteAccountForm(FlaskForm):
    password = PasswordField("Your password", validators=[DataRequired(message="Enter your password.")])


class ResendVerificationForm(FlaskForm):
    email = EmailField("Email", validators=_email)


class EmailChoiceField(SelectField):
    """One organization's notification email choice; anything else is a clear form error."""

    def pre_validate(self, form):
        if self.data not in {choice.value for choice in self.choices}:
            raise ValidationError("Choose immediately, daily digest or off.")


def notification_email_form(preferences, choices, submitted: bool = True):
    """A form with one choice per organization (``org_<id hex>``), filled with the saved choices.

    ``submitted``: read the request's form data; else a fresh form carrying the saved choices
    as its ``loaded`` values (``app.core.edits``).
    """

    class NotificationEmailForm(FlaskForm):
        loaded = loaded_field()

    for pref in preferences:
        setattr(
            NotificationEmailForm,
            f"org_{pref.org_id.hex}",
            EmailChoiceField(
                pref.name,
                choices=[SelectChoice(value, label) for value, label in choices],
                default=pref.email_notifications,
            ),
        )
    if submitted:
        return NotificationEmailForm(prefix="notifications")
    form = NotificationEmailForm(prefix="notifications", formdata=None)
    form.loaded.data = encode({f"org_{pref.org_id.hex}": pref.email_notifications for pref in preferences})
    return form


# --- two-factor authentication ---------------------------------------------------------------

_code = [DataRequired(message="Enter the code."), Length(max=40, message="That is not a code.")]


def _code_field(label: str, hint: str):
    return StringField(
        label,
        validators=_code,
        description=hint,
        render_kw={"autocomplete": "one-time-code", "autocapitalize": "off", "spellcheck": "false"},
    )


class StartTwoFactorForm(FlaskForm):
    """Draws the secret to set up (a button)."""


class ConfirmTwoFactorForm(FlaskForm):
    code = _code_field("Code from your app", "The 6 digits your authenticator app shows now.")


class TwoFactorSignInForm(FlaskForm):
    code = _code_field(
        "Authentication code", "The 6 digits your authenticator app shows, or one of your recovery codes."
    )


class RecoveryCodesForm(FlaskForm):
    password = PasswordField("Your password", validators=[DataRequired(message="Enter your password.")])


class DisableTwoFactorForm(FlaskForm):
    password = PasswordField("Your password", validators=[DataRequired(message="Enter your password.")])
    code = _code_field("Authentication code", "From your app, or a recovery code.")
