"""The audit log as files: CSV (cells a spreadsheet would run as formulas neutralised) and JSON
Lines (every field exactly, with the chain's hashes), written row by row as they are read."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable

from app.audit.log import describe
from app.core.security import spreadsheet_safe
from app.models import AuditEvent

CSV_COLUMNS = (
    "sequence",
    "time",
    "action",
    "description",
    "actor_name",
    "actor_email",
    "actor_id",
    "target_type",
    "target_id",
    "target_label",
    "ip_address",
    "request_id",
    "data",
    "hash",
)


def entry_record(event: AuditEvent) -> dict:
    """Every field of an entry as plain JSON values."""
    return {
        "sequence": event.sequence,
        "id": str(event.id),
        "time": event.created_at.isoformat(),
        "action": event.action,
        "description": describe(event),
        "actor_id": str(event.actor_id) if event.actor_id else None,
        "actor_name": event.actor_name,
        "actor_email": event.actor_email,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "target_label": event.target_label,
        "ip_address": event.ip_address,
        "request_id": event.request_id,
        "data": event.data or {},
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def _csv_line(cells: Iterable) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue()


def csv_header() -> str:
    return _csv_line(CSV_COLUMNS)


def csv_lines(entries: Iterable[AuditEvent]) -> str:
    """One CSV line per entry."""
    lines = []
    for event in entries:
        record = entry_record(event)
        record["data"] = json.dumps(record["data"], ensure_ascii=False, sort_keys=True)
        lines.append(_csv_line(spreadsheet_safe(record[column]) for column in CSV_COLUMNS))
    return "".join(lines)


def jsonl_lines(entries: Iterable[AuditEvent]) -> str:
    """One JSON object per entry and line."""
    return "".join(json.dumps(entry_record(e), ensure_ascii=False, sort_keys=True) + "\n" for e in entries)


#: Each download: its header line, its lines, its media type.
FORMATS = {
    "csv": (csv_header, csv_lines, "text/csv"),
    "jsonl": (lambda: "", jsonl_lines, "application/jsonl"),
}
