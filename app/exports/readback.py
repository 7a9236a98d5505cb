"""How the import reads an export's tables back (``app.exports.restore``): which columns are
copied, which name people or rows of earlier tables, and what a table added in a later format
version gives an older export."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Select, func, select


@dataclass(frozen=True)
class Person:
    """A column naming someone by email in the export: their account's id here, if any."""

    column: str
    field: str
    #: What the import report counts for someone without an account.
    use: str
    #: Without an account the row is skipped (else it is kept with no one named).
    required: bool = False


@dataclass(frozen=True)
class Reference:
    """A column referring to a row of an earlier table by that table's key in the export."""

    column: str
    field: str
    table: str
    #: An empty value refers to nothing (else every row must name a row of ``table``).
    optional: bool = False


@dataclass(frozen=True)
class ReadBack:
    """How the import reads a table's rows back into a new organization."""

    #: Copied as they are (times and dates parsed from ISO 8601).
    columns: tuple[str, ...]
    #: The field later tables refer to a row by; each such row gets a new id.
    key: str | None = None
    #: A new id for each row (link tables have none).
    new_id: bool = True
    references: tuple[Reference, ...] = ()
    people: tuple[Person, ...] = ()
    #: Old ids of this table's rows are rewritten to new ones in later tables' ``documents``.
    ids_in_documents: bool = False
    #: Document columns whose values may hold old ids of projects or labels.
    documents: tuple[str, ...] = ()
    #: Why a row's values (parsed, by column) cannot be stored, or None.
    problem: Callable[[dict], str | None] | None = None
    #: Columns exports made before them lack: (column, the value a row without it gets).
    added_later: tuple[tuple[str, object], ...] = ()
    #: The format version that added the table; an older export gets the rows
    #: ``missing_rows(new ids of the projects)`` instead.
    since_version: int = 1
    missing_rows: Callable[[list], list[dict]] | None = None


@dataclass(frozen=True)
class ExportTable:
    """One table of the export: its file names' stem, its model, its statement, and how it is
    read back."""

    name: str
    model: type
    statement: Callable[[], Select]
    read_back: ReadBack

    def count(self) -> Select:
        return select(func.count()).select_from(self.model)
