"""What the API reads and answers, as msgspec structs: they validate requests and make the
OpenAPI document's schemas (``app.api.spec``)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from app.core.web import CONTROL_CHARACTERS
from app.models.labels import LABEL_COLORS

Limit = Annotated[int, Meta(ge=1, le=100, description="How many to return (at most 100).")]
Cursor = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z0-9_-]{22}$", description="Where to go on from: `next_cursor` of the page before."
    ),
]
#: Text holds no control character but tab and line breaks (as the pages' fields), and a name
#: or a title at least one character that is not a space: written out, as Python's ``\s`` and
#: JSON Schema's (ECMAScript's) differ.
_PLAIN = "[^" + CONTROL_CHARACTERS.pattern.removeprefix("[")  # what every request's text may hold
_SEEN = r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
PLAIN_TEXT = rf"^{_PLAIN}*$"
NAMED_TEXT = rf"^{_PLAIN}*{_SEEN}{_PLAIN}*$"
Title = Annotated[str, Meta(min_length=1, max_length=255, pattern=NAMED_TEXT)]
Text = Annotated[str, Meta(max_length=100_000, pattern=PLAIN_TEXT)]
Priority = Annotated[int, Meta(ge=0, le=4, description="0 none, 1 low, 2 medium, 3 high, 4 urgent.")]
Estimate = Annotated[int, Meta(ge=0, le=1000)]
StateKey = Annotated[str, Meta(pattern=r"^[a-z0-9_]{1,16}$", description="A state's key.")]
ProjectKey = Annotated[
    str, Meta(pattern=r"^[A-Za-z][A-Za-z0-9]{1,9}$", description="2 to 10 letters or digits.")
]
#: A project's key where one is named (in any case).
ProjectRef = Annotated[str, Meta(pattern=r"^[A-Za-z][A-Za-z0-9]{1,9}$", description="A project's key.")]
#: A workflow state's key, as ``GET /projects/{project_key}/states`` lists them.
StateRef = StateKey
Ids = Annotated[list[uuid.UUID], Meta(max_length=50)]
LabelColor = Literal[tuple(LABEL_COLORS.values())]
#: Due dates people can set (``app.models.work.DUE_DATE_MIN``/``MAX``): years 1900 to 2999.
DueDate = Annotated[date, Meta(description="A day between 1900-01-01 and 2999-12-31.")]


class Page(msgspec.Struct, forbid_unknown_fields=True):
    limit: Limit = 50
    cursor: Cursor | None = None


class Ref(msgspec.Struct):
    id: uuid.UUID
    name: str


# --- projects, states, labels, members -----------------------------------------------------


class Project(msgspec.Struct):
    id: uuid.UUID
    key: str
    name: str
    description: str
    archived: bool
    created_at: datetime
    url: str


class ProjectPage(msgspec.Struct):
    data: list[Project]
    has_more: bool
    next_cursor: str | None


class NewProject(msgspec.Struct, forbid_unknown_fields=True):
    key: ProjectKey
    name: Annotated[str, Meta(min_length=1, max_length=100, pattern=NAMED_TEXT)]
    description: Annotated[str, Meta(max_length=10_000, pattern=PLAIN_TEXT)] = ""


class State(msgspec.Struct):
    key: str
    name: str
    category: str


class StateList(msgspec.Struct):
    data: list[State]


class Label(msgspec.Struct):
    id: uuid.UUID
    name: str
    color: str


class LabelPage(msgspec.Struct):
    data: list[Label]
    has_more: bool
    next_cursor: str | None


class NewLabel(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=50, pattern=NAMED_TEXT)]
    #: One of the palette's colours (gray when left out).
    color: LabelColor | None = None


class Member(msgspec.Struct):
    id: uuid.UUID
    name: str
    email: str
    role: str


class MemberPage(msgspec.Struct):
    data: list[Member]
    has_more: bool
    next_cursor: str | None


# --- issues and comments -------------------------------------------------------------------


class Issue(msgspec.Struct):
    id: uuid.UUID
    key: str
    number: int
    project: str
    title: str
    description: str
    state: str
    priority: int
    due_date: date | None
    estimate: int | None
    assignees: list[Ref]
    labels: list[Ref]
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    version: int
    url: str


class IssuePage(msgspec.Struct):
    data: list[Issue]
    has_more: bool
    next_cursor: str | None


class IssueQuery(msgspec.Struct, forbid_unknown_fields=True):
    limit: Limit = 50
    cursor: Cursor | None = None
    project: ProjectRef | None = None
    state: StateRef | None = None


class IssueFilter(msgspec.Struct, forbid_unknown_fields=True):
    project: ProjectRef | None = None
    state: StateRef | None = None


class NewIssue(msgspec.Struct, forbid_unknown_fields=True):
    project: ProjectRef
    title: Title
    description: Text = ""
    state: StateKey | None = None
    priority: Priority = 0
    due_date: date | None = None
    estimate: Estimate | None = None
    assignees: Ids = []
    labels: Ids = []


class IssueChanges(msgspec.Struct, forbid_unknown_fields=True):
    """The fields to change; those left out stay as they are."""

    title: Title | UnsetType = UNSET
    description: Text | UnsetType = UNSET
    state: StateKey | UnsetType = UNSET
    priority: Priority | UnsetType = UNSET
    due_date: date | UnsetType | None = UNSET
    estimate: Estimate | UnsetType | None = UNSET
    assignees: Ids | UnsetType = UNSET
    labels: Ids | UnsetType = UNSET


class Comment(msgspec.Struct):
    id: uuid.UUID
    author: Ref | None
    body: str
    created_at: datetime


class CommentPage(msgspec.Struct):
    data: list[Comment]
    has_more: bool
    next_cursor: str | None


class NewComment(msgspec.Struct, forbid_unknown_fields=True):
    body: Annotated[str, Meta(min_length=1, max_length=100_000, pattern=NAMED_TEXT)]


class SearchQuery(msgspec.Struct, forbid_unknown_fields=True):
    q: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=200,
            pattern=PLAIN_TEXT,
            description="Words, as in the search page (no control characters).",
        ),
    ]
    limit: Limit = 20


class SearchHit(msgspec.Struct):
    id: uuid.UUID
    key: str
    title: str
    state: str
    excerpt: str


class SearchResult(msgspec.Struct):
    data: list[SearchHit]
