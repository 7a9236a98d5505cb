from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, ValidationError

from app.auth.passwords import AcceptablePassword
from app.core.edits import encode
from app.core.names import VisibleText
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
_name = [
    DataRequired(message="Enter your name."),
    Length(max=100, message="Keep it under 100 characters."),
    VisibleText(),
]


class SignUpForm(FlaskForm):
    name = StringField("Your name", validators=_name)
    email = EmailField("Work email", validators=_email)
    password = PasswordField("Password", validators=_password)
    organization = StringField(
        "Organization name",
        validators=[
            DataRequired(message="Name your organization (you can change it later)."),
            Length(max=100, message="Keep it under 100 characters."),
            VisibleText(),
        ],
    )


class InvitedSignUpForm(FlaskForm):
    name = StringField("Your name", validators=_name)
    password = PasswordField("Password", validators=_password)


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=_email)
    password = PasswordField("Password", validators=[DataRequired(message="Enter your password.")])


class ForgotPasswordForm(FlaskForm):
    email = EmailField("Email", validators=_email)


class ResetPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=_password)
    confirm = PasswordField(
        "Repeat the new password", validators=[EqualTo("password", message="The two passwords differ.")]
    )


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired(message="Enter it.")])
    password = PasswordField("New password", validators=_password)
    confirm = PasswordField(
        "Repeat the new password", validators=[EqualTo("password", message="The two passwords differ.")]
    )


class ProfileForm(FlaskForm):
    name = StringField("Name", validators=_name)
    #: The values the page showed (``app.core.edits``).
    loaded = HiddenField()


class ChangeEmailForm(FlaskForm):
    email = EmailField("New email address", validators=_email)
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
        loaded = HiddenField()

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
