"""Labels: an organization's named colours for issues, and how their names are compared."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import datetime

from sqlalchemy import Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, validates

from app.core.tenancy import TenantMixin
from app.extensions import db
from app.models.base import UTCDateTime, new_id, utcnow

#: The colours a label may have, by the name people (and the stylesheet's ``label--<name>``
#: classes) know them by; a label stores the colour's value.
LABEL_COLORS = {
    "gray": "#6b7280",
    "red": "#dc2626",
    "orange": "#ea580c",
    "yellow": "#ca8a04",
    "green": "#16a34a",
    "teal": "#0d9488",
    "blue": "#2563eb",
    "purple": "#9333ea",
    "pink": "#db2777",
}
DEFAULT_LABEL_COLOR = LABEL_COLORS["gray"]
_LABEL_COLOR_NAMES = {value: name for name, value in LABEL_COLORS.items()}


def label_color_name(color: str | None) -> str:
    """The palette name of a stored colour (gray for one outside the palette, as older data may hold)."""
    return _LABEL_COLOR_NAMES.get((color or "").lower(), "gray")


def folded_label_name(name: str) -> str:
    """A label's name as names are compared: "Bug", "BUG" and "bug" are one label."""
    return unicodedata.normalize("NFKC", name).casefold()


def _folded_name_default(context) -> str:
    """``folded_name`` for rows inserted without the ORM (restoring an export)."""
    return folded_label_name(context.get_current_parameters()["name"])


class Label(TenantMixin, db.Model):
    __tablename__ = "labels"
    #: The filter menus and the issue page's picker list labels; issue rows and board cards
    #: show their names.
    __cache_topics__ = ("labels", "issues")

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(50))
    #: The name as compared (``folded_label_name``), set with the name: unique per organization,
    #: so two people creating "Bug" and "bug" at once end with one label.
    folded_name: Mapped[str] = mapped_column(String(200), default=_folded_name_default)
    color: Mapped[str] = mapped_column(String(7), default=DEFAULT_LABEL_COLOR)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        Index("ix_labels_folded_name", "tenant_id", "folded_name", unique=True),
    )

    @validates("name")
    def _fold_name(self, _key, name):
        self.folded_name = folded_label_name(name) if name is not None else None
        return name

    @property
    def color_name(self) -> str:
        return label_color_name(self.color)
