"""The forms of single sign-on: an organization's connection, its domains, enforcement, where a
person starts, and an owner's break-glass entry."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from app.core.permissions import ADMIN, MEMBER, ROLE_LABELS, VIEWER

#: Roles people who join by signing in may get (never owner).
PROVISIONED_ROLES = (MEMBER, VIEWER, ADMIN)


class ConnectionForm(FlaskForm):
    """The provider and the client Worklane is registered as there."""

    issuer = StringField(
        "Issuer URL",
        description="Your provider's issuer, such as https://login.example.com (or its "
        "/.well-known/openid-configuration address).",
        validators=[DataRequired(message="Enter the provider's issuer URL."), Length(max=500)],
        render_kw={"autocomplete": "off", "spellcheck": "false", "inputmode": "url"},
    )
    client_id = StringField(
        "Client ID",
        validators=[DataRequired(message="Enter the client ID the provider gave."), Length(max=255)],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    client_secret = PasswordField(
        "Client secret",
        description="Stored encrypted. Leave empty to keep the one saved.",
        validators=[Optional(), Length(max=1000)],
        render_kw={"autocomplete": "new-password"},
    )
    default_role = SelectField(
        "Role of people who join by signing in",
        choices=[SelectChoice(role, ROLE_LABELS[role]) for role in PROVISIONED_ROLES],
        default=MEMBER,
    )


class DomainForm(FlaskForm):
    domain = StringField(
        "Email domain",
        description="Such as example.com: people with an address there may join by signing in.",
        validators=[DataRequired(message="Enter a domain."), Length(max=253)],
        render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "off"},
    )


class EnforceForm(FlaskForm):
    enforced = BooleanField("Members reach the organization only after signing in through the provider")


class StartForm(FlaskForm):
    """Where "Continue with SSO" starts: a work email or the organization's address."""

    address = StringField(
        "Work email or organization address",
        description="Such as you@example.com, or the acme of /acme/.",
        validators=[
            DataRequired(message="Enter your work email or your organization's address."),
            Length(max=254),
        ],
        render_kw={"autocomplete": "username", "spellcheck": "false", "autocapitalize": "off"},
    )


class BreakGlassForm(FlaskForm):
    """An owner's way in while the provider fails them: their password, and their code."""

    password = PasswordField("Your password", validators=[DataRequired(message="Enter your password.")])
    code = StringField(
        "Authentication code",
        description="From your authenticator app, or a recovery code (if two-factor is on).",
        validators=[Optional(), Length(max=32)],
        render_kw={"autocomplete": "one-time-code", "autocapitalize": "off", "spellcheck": "false"},
    )
    reason = StringField(
        "Why",
        description="Recorded in the audit log with your entry.",
        validators=[DataRequired(message="Say why you need to enter without the provider."), Length(max=300)],
    )
