"""Exports of the current organization: starting one, the files kept, and signed download links."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

from flask import current_app

from app.core import audit
from app.core.security import InvalidToken, make_token, read_token
from app.core.storage import file_store, tenant_key
from app.core.tenancy import require_tenant
from app.models import Task
from app.tasks.services import start_task

KIND = "export"
JOB = "app.exports.jobs.export_organization"
TOKEN_PURPOSE = "export-download"
NIGHTLY_SUFFIX = "-nightly"
#: Fixed namespace of nightly export task ids: one id per organization and day.
_NIGHTLY_NAMESPACE = uuid.UUID("8c0f5a52-6f4c-4d0e-9a53-3c1fb6f0e7a1")


class ExportLinkError(Exception):
    """A download link that cannot be served; ``status`` is the HTTP answer (404 or 410)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ExportFile:
    key: str
    name: str
    size: int
    created_at: datetime

    @property
    def nightly(self) -> bool:
        return self.name.endswith(f"{NIGHTLY_SUFFIX}.zip")


def export_directory() -> str:
    return tenant_key("exports")


def export_file_name(slug: str, at: datetime, nightly: bool) -> str:
    """``acme-2026-11-25-nightly.zip`` (one per day) or ``acme-2026-11-25-101530.zip``."""
    suffix = NIGHTLY_SUFFIX if nightly else at.strftime("-%H%M%S")
    return f"{slug}-{at:%Y-%m-%d}{suffix}.zip"


def export_key(name: str) -> str:
    return tenant_key("exports", name)


def start_export() -> Task:
    """Queue an export of the current organization, started by the signed-in admin."""
    task = start_task(KIND, JOB, description="Export of the organization")
    audit.record("export.started", target=task)
    return task


def nightly_task_id(tenant_id, day: date) -> uuid.UUID:
    """The id of an organization's nightly export task of ``day`` (the job id too)."""
    return uuid.uuid5(_NIGHTLY_NAMESPACE, f"{tenant_id}:{day.isoformat()}")


def available_exports() -> list[ExportFile]:
    """The organization's export files still kept, newest first."""
    found = [
        ExportFile(
            stored.key,
            stored.key.rsplit("/", 1)[-1],
            stored.size,
            datetime.fromtimestamp(stored.modified_at, UTC),
        )
        for stored in file_store().list(export_directory())
    ]
    return sorted(found, key=lambda f: f.created_at, reverse=True)


def retention_days() -> int:
    return current_app.config["EXPORT_RETENTION_DAYS"]


def download_token(key: str) -> str:
    """A link token bound to this organization and this file; expires (``EXPORT_LINK_HOURS``)."""
    return make_token(TOKEN_PURPOSE, {"tenant": str(require_tenant()), "key": key})


def file_for_token(token: str) -> ExportFile:
    """The export a link names, if it is this organization's and still kept; else ExportLinkError."""
    max_age = current_app.config["EXPORT_LINK_HOURS"] * 3600
    try:
        payload = read_token(TOKEN_PURPOSE, token, max_age_seconds=max_age)
    except InvalidToken as exc:
        if exc.expired:
            raise ExportLinkError(
                410, "This download link has expired. Open the organization's exports for a new one."
            ) from exc
        raise ExportLinkError(404, "This download link is not valid.") from exc
    key = payload.get("key") if isinstance(payload, dict) else None
    if payload.get("tenant") != str(require_tenant()) or not isinstance(key, str):
        raise ExportLinkError(404, "This download link is not valid.")
    if not key.startswith(export_directory() + "/"):
        raise ExportLinkError(404, "This download link is not valid.")
    store = file_store()
    try:
        path = store.path(key)
    except ValueError as exc:
        raise ExportLinkError(404, "This download link is not valid.") from exc
    if not path.is_file():
        raise ExportLinkError(
            410, f"This export is no longer kept (exports are kept {retention_days()} days)."
        )
    stat = path.stat()
    return ExportFile(key, path.name, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC))


def record_download(export: ExportFile) -> None:
    audit.record("export.downloaded", file=export.name, size=export.size)
