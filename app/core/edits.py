"""Edits that never overwrite someone else's change in silence.

Every edit form carries what it was loaded with: a hidden ``loaded`` field holding the
values shown (JSON, with the row's version where it has one). On save, only the fields the
person changed (submitted value differs from the loaded one) are applied; a field they
changed that someone else also changed since the page was loaded is a conflict, and the
save is refused as a whole (``EditConflict``, answered 409 with a page that keeps what the
person typed and shows the other change). Fields the person left alone never revert
another person's change.

Services compare against the row as it is *now*, read under a row lock
(``SELECT … FOR UPDATE`` on PostgreSQL; SQLite writers hold the database's write lock
from ``BEGIN IMMEDIATE``), so two saves at the same moment are checked one after the other.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import abort
from sqlalchemy import inspect, select

from app.extensions import db

#: The hidden field every edit form carries.
LOADED_FIELD = "loaded"
STALE_FORM = "This form is out of date or incomplete. Reload the page and make your change again."


def lf_newlines(text):
    """A form filter: browsers send a textarea's newlines as CRLF; keep them as LF, as shown."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if isinstance(text, str) else text


def locked(obj):
    """``obj`` read again under a row lock held until the transaction ends (its latest values)."""
    mapper = inspect(obj).mapper
    criteria = [
        column == value
        for column, value in zip(mapper.primary_key, mapper.primary_key_from_instance(obj), strict=True)
    ]
    statement = (
        select(mapper.class_)
        .where(*criteria)
        .with_for_update(of=mapper.class_)
        .execution_options(populate_existing=True)
    )
    return db.session.scalars(statement).one()


def encode(values: Mapping[str, Any]) -> str:
    return json.dumps(dict(values), sort_keys=True, separators=(",", ":"), default=str)


def decode(text: str | None, fields) -> dict[str, Any]:
    """The loaded values a form sent back; a missing or garbled value is a 400 with a reason."""
    try:
        values = json.loads(text or "")
    except ValueError:
        values = None
    if not isinstance(values, dict) or not set(fields) <= set(values):
        abort(400, STALE_FORM)
    return values


@dataclass(frozen=True)
class Conflict:
    """One field both people changed: what it was, what they made it, what this person typed."""

    field: str
    label: str
    loaded: Any
    theirs: Any
    yours: Any
    by: str | None = None


@dataclass
class EditConflict(Exception):
    """The save is refused: ``conflicts`` lists each field changed by both."""

    conflicts: list[Conflict]
    current: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return "; ".join(f"{c.label} was changed by {c.by or 'someone else'}" for c in self.conflicts)


def changes(loaded: Mapping[str, Any], submitted: Mapping[str, Any]) -> dict[str, Any]:
    """The fields this person changed: submitted values that differ from the loaded ones."""
    return {name: value for name, value in submitted.items() if value != loaded.get(name)}


def merge(
    current: Mapping[str, Any],
    loaded: Mapping[str, Any],
    submitted: Mapping[str, Any],
    labels: Mapping[str, str] | None = None,
    by: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """What to write: the person's own changes; raises EditConflict if another change collides.

    A field the person changed is in conflict when its stored value is no longer the one
    they loaded, unless the other change made it exactly what they typed (nothing to write).
    """
    mine = changes(loaded, submitted)
    conflicts = [
        Conflict(
            name,
            (labels or {}).get(name) or str(name).replace("_", " ").capitalize(),
            loaded.get(name),
            current.get(name),
            value,
            (by or {}).get(name),
        )
        for name, value in mine.items()
        if current.get(name) != loaded.get(name) and current.get(name) != value
    ]
    if conflicts:
        raise EditConflict(conflicts, dict(current))
    return {name: value for name, value in mine.items() if current.get(name) != value}


def after_conflict(
    current: Mapping[str, Any], loaded: Mapping[str, Any], submitted: Mapping[str, Any]
) -> dict[str, Any]:
    """What the form shows after a conflict: the person's own changes over the current values.

    Its ``loaded`` becomes the current values, so saving again (having seen the other
    change) applies the person's changes and nothing else.
    """
    mine = changes(loaded, submitted)
    return {name: mine.get(name, value) for name, value in current.items()}
