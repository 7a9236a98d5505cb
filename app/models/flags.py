"""Feature flags' states, as operators set them (the flags themselves are declared in
``app/flags/catalog.py``). A global table: a flag is the system's, not an organization's."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import JSONDocument, UTCDateTime, utcnow


class FeatureFlag(db.Model):
    """How an operator set one flag: off, on, on for listed organizations, or on for a percentage."""

    __tablename__ = "feature_flags"

    OFF, ON, LISTED, PERCENTAGE = "off", "on", "listed", "percentage"
    MODES = (OFF, ON, LISTED, PERCENTAGE)
    MODE_LABELS = {
        OFF: "Off for everyone",
        ON: "On for everyone",
        LISTED: "On for the organizations listed",
        PERCENTAGE: "On for a percentage of organizations",
    }

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    mode: Mapped[str] = mapped_column(String(16))
    #: For ``percentage``: 0 to 100, the share of organizations it is on for.
    percentage: Mapped[int] = mapped_column(default=0, server_default="0")
    #: For ``listed``: the organizations' ids, as text.
    organization_ids: Mapped[list] = mapped_column(JSONDocument, default=list)
    updated_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    updated_by = relationship("User", lazy="joined")

    __table_args__ = (
        CheckConstraint("mode IN ('off', 'on', 'listed', 'percentage')", name="mode_known"),
        CheckConstraint("percentage BETWEEN 0 AND 100", name="percentage_range"),
    )
