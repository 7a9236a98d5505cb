"""The operator pages' forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import IntegerField, RadioField, SelectChoice, SelectField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from app.models import FeatureFlag
from app.plans.catalog import PLANS


class SuspendForm(FlaskForm):
    reason = TextAreaField(
        "Reason",
        description="Mailed to the organization's owners.",
        validators=[DataRequired(message="Say why: the owners are told."), Length(max=500)],
    )


class ImpersonateForm(FlaskForm):
    reason = TextAreaField(
        "Reason",
        description="Recorded in the audit log of each of the person's organizations.",
        validators=[
            DataRequired(message="Say why: it is recorded in the person's organizations."),
            Length(max=500),
        ],
    )


class PlanForm(FlaskForm):
    plan = SelectField(
        "Plan",
        choices=[SelectChoice(plan.name, plan.label) for plan in PLANS.values()],
        validators=[DataRequired(message="Choose a plan.")],
    )


class FlagForm(FlaskForm):
    mode = RadioField(
        "State",
        choices=[SelectChoice(mode, label) for mode, label in FeatureFlag.MODE_LABELS.items()],
        validators=[DataRequired(message="Choose how the flag is set.")],
    )
    percentage = IntegerField(
        "Percentage of organizations",
        description="0 to 100. An organization in at a percentage stays in when it is raised.",
        validators=[Optional(), NumberRange(min=0, max=100, message="A whole number from 0 to 100.")],
    )
    organizations = TextAreaField(
        "Organizations",
        description="Their addresses (as in /acme/), one a line or separated by commas.",
        validators=[Length(max=10_000)],
    )
