"""Writing an organization's export: a zip streamed to disk, row by row.

Memory stays flat whatever the organization's size: rows come from a server-side cursor
in batches (``yield_per``), each batch is written to the zip entry as it arrives, and no
list of a table's rows is ever built. A zip can have one entry open for writing at a time,
so each table's JSON Lines go straight into the zip while its CSV is written beside it to
a temporary file, then copied in.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import IO

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.security import spreadsheet_safe
from app.exports.tables import FORMAT, FORMAT_VERSION, TABLES
from app.extensions import db
from app.models import Membership, Organization, User
from app.models.base import utcnow

#: Rows fetched from the database per round trip.
BATCH_ROWS = 1000


def plain(value):
    """A column value as JSON has it: times and dates in ISO 8601, ids as strings."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


def csv_cell(value) -> str:
    """A column value in a CSV cell: empty for none, JSON for documents, and text a spreadsheet
    would run as a formula quoted (the JSON Lines file keeps the exact value)."""
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return spreadsheet_safe(value)


@contextmanager
def snapshot_session() -> Iterator[Session]:
    """A read-only session of its own: one consistent snapshot for the whole export.

    Progress is committed through ``db.session`` meanwhile, on another connection, so the
    server-side cursors of this one stay open. PostgreSQL reads at REPEATABLE READ (every
    table as of the same moment); SQLite's WAL gives a reader its snapshot too.
    """
    engine = db.engine
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    else:  # a deferred transaction: the snapshot never holds SQLite's write lock
        engine = engine.execution_options(sqlite_read_only=True)
    session = Session(bind=engine)
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def count_rows(session: Session) -> dict[str, int]:
    """Rows per table in the current tenant (read first: it also fixes the snapshot)."""
    return {table.name: session.scalar(table.count()) for table in TABLES}


def organization_document(session: Session, organization: Organization, counts: dict[str, int]) -> dict:
    members = session.execute(
        select(User.email, User.name, Membership.role, Membership.created_at)
        .join(User, User.id == Membership.user_id)
        .order_by(User.email)
    ).all()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "exported_at": plain(utcnow()),
        "organization": {
            "name": organization.name,
            "slug": organization.slug,
            "created_at": plain(organization.created_at),
        },
        "members": [
            {"email": email, "name": name, "role": role, "joined_at": plain(joined)}
            for email, name, role, joined in members
        ],
        "tables": counts,
    }


def write_export(
    stream: IO[bytes],
    session: Session,
    organization: Organization,
    progress: Callable[[int, str], None],
) -> dict[str, int]:
    """Write the zip to ``stream``; ``progress(rows_done, message)`` after each batch.

    Returns the rows written per table.
    """
    written: dict[str, int] = {}
    done = 0
    with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for table in TABLES:
            rows = 0
            with tempfile.TemporaryFile("w+b") as csv_file:
                csv_text = io.TextIOWrapper(csv_file, encoding="utf-8", newline="")
                csv_writer = csv.writer(csv_text)
                entry = archive.open(f"{table.name}.jsonl", "w", force_zip64=True)
                with io.TextIOWrapper(entry, encoding="utf-8", newline="\n") as jsonl:
                    result = session.execute(table.statement().execution_options(yield_per=BATCH_ROWS))
                    columns = list(result.keys())
                    csv_writer.writerow(columns)
                    for batch in result.partitions():
                        for row in batch:
                            jsonl.write(
                                json.dumps(
                                    {name: plain(value) for name, value in zip(columns, row, strict=True)},
                                    ensure_ascii=False,
                                    separators=(",", ":"),
                                )
                            )
                            jsonl.write("\n")
                            csv_writer.writerow([csv_cell(value) for value in row])
                        rows += len(batch)
                        progress(done + rows, f"{table.name.replace('_', ' ')}: {rows:,} rows")
                    result.close()
                csv_text.flush()
                csv_text.detach()
                csv_file.seek(0)
                with archive.open(f"{table.name}.csv", "w", force_zip64=True) as entry:
                    while chunk := csv_file.read(1 << 20):
                        entry.write(chunk)
            written[table.name] = rows
            done += rows
            progress(done, f"{table.name.replace('_', ' ')}: {rows:,} rows")
        document = organization_document(session, organization, written)
        archive.writestr("organization.json", json.dumps(document, ensure_ascii=False, indent=2) + "\n")
    return written
