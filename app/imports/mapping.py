"""Which field of an issue each CSV column becomes: guessed from the header, then chosen."""

from __future__ import annotations

import re

from app.issues.edit_form import EDIT_FIELDS

IGNORE = "ignore"
#: What a CSV column can become, in the order the mapping menu shows them: an issue's fields as
#: its form names them, and an ID.
FIELDS = {
    IGNORE: "Ignore this column",
    **EDIT_FIELDS,
    "external_id": "ID (recognises re-imports)",
}
#: Header names (compared in lower case, ``_`` and ``-`` read as spaces) each field is guessed from.
HEADER_NAMES = {
    "title": {"title", "summary", "name", "subject", "issue", "issue title"},
    "description": {"description", "body", "details", "notes", "text"},
    "state": {"state", "status", "workflow state"},
    "priority": {"priority", "prio"},
    "assignees": {"assignee", "assignees", "assigned to", "owner", "owners"},
    "labels": {"label", "labels", "tag", "tags"},
    "due_date": {"due date", "due", "due on", "deadline"},
    "estimate": {"estimate", "estimation", "points", "story points"},
    "external_id": {"id", "key", "issue id", "issue key", "external id", "ref"},
}


class MappingError(ValueError):
    """The chosen mapping cannot work (no title column, a field chosen twice)."""


def _header_name(name: str) -> str:
    return " ".join(re.sub(r"[_\-]", " ", name.lower()).split())


def guess_mapping(header: list[str]) -> list[str]:
    """A field for each column, from its name ("Summary" → title, "Status" → state); each field once."""
    taken, mapping = set(), []
    for name in header:
        guess = next(
            (f for f, names in HEADER_NAMES.items() if _header_name(name) in names and f not in taken),
            IGNORE,
        )
        if guess != IGNORE:
            taken.add(guess)
        mapping.append(guess)
    return mapping


def mapping_from_form(header: list[str], chosen: list[str | None]) -> list[str]:
    """The mapping a member chose, checked: known fields, a title, each field at most once."""
    mapping = [value if value in FIELDS else IGNORE for value in chosen]
    mapping += [IGNORE] * (len(header) - len(mapping))
    used = [f for f in mapping if f != IGNORE]
    twice = sorted({FIELDS[f] for f in used if used.count(f) > 1})
    if twice:
        raise MappingError(f"Each field can come from one column only: {', '.join(twice)} is chosen twice.")
    if "title" not in used:
        raise MappingError("Choose the column that holds the issues' titles.")
    return mapping[: len(header)]
