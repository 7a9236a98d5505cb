"""A project's workflow states: named steps in fixed categories, the columns of its board.

An issue's ``state`` is the key of one of its project's states (a foreign key). Keys are slugs
made once and never changed, so saved URLs (``?state=todo``) and history keep meaning the same
state; names are what people read and may be renamed. Whether an issue is open follows its
state's category: completed and cancelled close it (``Issue.closed_at``).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.tenancy import TenantMixin
from app.extensions import db
from app.models.base import UTCDateTime, new_id, tenant_fk, utcnow

BACKLOG, UNSTARTED, STARTED = "backlog", "unstarted", "started"
COMPLETED, CANCELLED = "completed", "cancelled"
#: The categories in board order.
CATEGORIES = (BACKLOG, UNSTARTED, STARTED, COMPLETED, CANCELLED)
CATEGORY_LABELS = {
    BACKLOG: "Backlog",
    UNSTARTED: "Unstarted",
    STARTED: "Started",
    COMPLETED: "Completed",
    CANCELLED: "Cancelled",
}
#: An issue in a state of these categories is closed.
CLOSED_CATEGORIES = (COMPLETED, CANCELLED)
#: Every project keeps a state in each of these: new issues start unstarted, work ends completed.
REQUIRED_CATEGORIES = (UNSTARTED, COMPLETED)
#: The states every project starts with (key, name, category), in board order: the states of
#: every issue written before projects had their own.
DEFAULT_STATES = (
    ("backlog", "Backlog", BACKLOG),
    ("todo", "Todo", UNSTARTED),
    ("in_progress", "In progress", STARTED),
    ("in_review", "In review", STARTED),
    ("done", "Done", COMPLETED),
    ("cancelled", "Cancelled", CANCELLED),
)
#: The category of each default key (an export made before projects had their own states).
DEFAULT_CATEGORIES = {key: category for key, _name, category in DEFAULT_STATES}
STATE_KEY_LENGTH = 16
STATE_NAME_LENGTH = 40


def state_key_for(name: str, taken) -> str:
    """A key for a new state called ``name``: its letters and digits in lower case, joined by
    ``_``, made unique among ``taken`` with a number."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")[:STATE_KEY_LENGTH] or "state"
    key, number = base, 2
    while key in taken:
        suffix = f"_{number}"
        key, number = base[: STATE_KEY_LENGTH - len(suffix)] + suffix, number + 1
    return key


class WorkflowState(TenantMixin, db.Model):
    __tablename__ = "workflow_states"
    #: Boards, lists, issue pages, reports and the overview show states by name and in order.
    __cache_topics__ = ("issues", "projects")

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID]
    key: Mapped[str] = mapped_column(String(STATE_KEY_LENGTH))
    name: Mapped[str] = mapped_column(String(STATE_NAME_LENGTH))
    category: Mapped[str] = mapped_column(String(16), info={"choices": CATEGORIES})
    #: Order on the board within the project (categories first, in their fixed order).
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        tenant_fk(["project_id"], "projects"),
        # What issues.state refers to.
        UniqueConstraint("tenant_id", "project_id", "key"),
        CheckConstraint(
            "category IN ('backlog', 'unstarted', 'started', 'completed', 'cancelled')",
            name="category_known",
        ),
        Index("ix_workflow_states_project_position", "tenant_id", "project_id", "position"),
    )

    @property
    def is_closed(self) -> bool:
        return self.category in CLOSED_CATEGORIES


def default_states() -> list[WorkflowState]:
    """New rows of the default states, for a new project."""
    return [
        WorkflowState(key=key, name=name, category=category, position=position)
        for position, (key, name, category) in enumerate(DEFAULT_STATES)
    ]
