"""The uploaded CSV file of an import: checked and stored under the organization's files with
what the preview needs (header, a few rows), read back row by row by the import job."""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import IO

from app.core.storage import file_store, tenant_key
from app.plans import quotas

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
PREVIEW_ROWS = 5
_TOKEN = re.compile(r"^[0-9a-f]{32}$")


class UploadError(ValueError):
    """The uploaded file cannot be imported; the message says why (shown as a form error)."""


@dataclass
class Upload:
    """A stored upload as the preview and the job know it (kept beside the file as JSON)."""

    token: str
    filename: str
    delimiter: str
    header: list[str]
    rows: int
    preview: list[list[str]] = field(default_factory=list)


def upload_key(token: str) -> str:
    return tenant_key("imports", f"{token}.csv")


def _meta_key(token: str) -> str:
    return tenant_key("imports", f"{token}.json")


def records(stream: IO[str], delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """``(line, cells)`` for each non-blank record, the line being where it starts in the file."""
    reader = csv.reader(stream, delimiter=delimiter)
    last = 0
    for cells in reader:
        line, last = last + 1, reader.line_num
        if any(cell.strip() for cell in cells):
            yield line, cells


def _sniff_delimiter(text: str) -> str:
    first_line = text.split("\n", 1)[0]
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _clean_filename(name: str | None) -> str:
    name = (name or "upload.csv").replace("\\", "/").rsplit("/", 1)[-1].strip()
    return (re.sub(r"[\x00-\x1f]", "", name) or "upload.csv")[:100]


def store_upload(stream: IO[bytes], filename: str | None) -> Upload:
    """Check an uploaded CSV and store it under the organization's files; ``UploadError`` if unusable.

    Nothing is stored unless the whole file is UTF-8 CSV with a header and at least one row.
    """
    data = stream.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(
            f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB: split it into smaller files."
        )
    if not data.strip():
        raise UploadError("The file is empty.")
    try:
        quotas.check(None, "storage", adding=len(data))
    except quotas.QuotaExceeded as exc:
        raise UploadError(str(exc)) from exc
    if b"\x00" in data:
        raise UploadError("This is not a CSV file (it holds binary data). Export the sheet as CSV first.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UploadError(
            f"The file is not UTF-8 text (byte {exc.start + 1} is not). "
            "Save it as “CSV UTF-8” and upload it again."
        ) from exc
    delimiter = _sniff_delimiter(text)
    header, rows, preview = None, 0, []
    try:
        for _line, cells in records(io.StringIO(text, newline=""), delimiter):
            if header is None:
                header = [cell.strip() for cell in cells]
                continue
            rows += 1
            if len(preview) < PREVIEW_ROWS:
                preview.append(cells)
    except csv.Error as exc:
        raise UploadError(f"This is not a readable CSV file: {exc}.") from exc
    if header is None:
        raise UploadError("The file is empty.")
    if rows == 0:
        raise UploadError("The file has a header line but no rows to import.")
    upload = Upload(secrets.token_hex(16), _clean_filename(filename), delimiter, header, rows, preview)
    store = file_store()
    with store.open_write(upload_key(upload.token)) as out:
        out.write(data)
    with store.open_write(_meta_key(upload.token), "w") as out:
        json.dump(asdict(upload), out)
    return upload


def load_upload(token: str | None) -> Upload | None:
    """The organization's stored upload with this token, or None (unknown, malformed, or another's)."""
    if not token or not _TOKEN.match(token):
        return None
    store = file_store()
    key = _meta_key(token)
    if not store.exists(key) or not store.exists(upload_key(token)):
        return None
    with store.open_read(key, "r") as stream:
        return Upload(**json.load(stream))


def delete_upload(token: str) -> None:
    store = file_store()
    store.delete(upload_key(token))
    store.delete(_meta_key(token))


def read_rows(upload: Upload) -> Iterator[tuple[int, list[str]]]:
    """The stored file's data rows, streamed: ``(line in the file, cells)``."""
    with file_store().open_read(upload_key(upload.token), "rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        rows = records(text, upload.delimiter)
        next(rows, None)  # the header
        yield from rows
