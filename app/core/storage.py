"""Files the product keeps: uploaded imports, exports. One place decides where they live.

Files live under ``FILE_STORAGE_PATH`` (default ``instance/files``). Web and worker processes on
several machines must share it (a mounted volume): a file a member uploads on one web process
is read by a worker elsewhere, and an export a worker writes is downloaded through any web
process.

Keys are relative paths. A tenant's files are always under its own prefix, built from the
current tenant (``tenant_key``), the same way cache keys are (``app/core/cache.py``).
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from flask import current_app

from app.core.tenancy import require_tenant

_SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def tenant_key(*parts: str) -> str:
    """The key of a file of the current tenant: ``t/<tenant>/<parts…>``."""
    return "/".join(["t", str(require_tenant()), *parts])


@dataclass(frozen=True)
class StoredFile:
    key: str
    size: int
    modified_at: float


class FileStore:
    """A directory of files addressed by key; writes are atomic (temporary file, then rename)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        parts = key.split("/")
        if not parts or not all(_SAFE_PART.match(part) for part in parts):
            raise ValueError(f"not a file key: {key!r}")
        return self.root.joinpath(*parts)

    @contextmanager
    def open_write(self, key: str, mode: str = "wb") -> Iterator[IO]:
        """Write the file; it appears under ``key`` only once the block ends without error."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
        try:
            with os.fdopen(handle, mode) as stream:
                yield stream
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def open_read(self, key: str, mode: str = "rb") -> IO:
        return self.path(key).open(mode)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def list(self, prefix: str) -> list[StoredFile]:
        """Every file under ``prefix`` (a key of a directory), oldest first."""
        base = self.path(prefix)
        if not base.is_dir():
            return []
        found = []
        for path in base.rglob("*"):
            if path.is_file() and not path.name.startswith(".partial-"):
                stat = path.stat()
                key = "/".join(path.relative_to(self.root).parts)
                found.append(StoredFile(key, stat.st_size, stat.st_mtime))
        return sorted(found, key=lambda f: f.modified_at)

    def delete_older_than(self, prefix: str, seconds: float) -> int:
        """Delete files under ``prefix`` last written more than ``seconds`` ago; how many."""
        limit = time.time() - seconds
        old = [f for f in self.list(prefix) if f.modified_at < limit]
        for stored in old:
            self.delete(stored.key)
        return len(old)


def file_store() -> FileStore:
    return FileStore(current_app.config["FILE_STORAGE_PATH"])


def tenant_bytes(tenant_id) -> int:
    """The size of an organization's files (uploads, exports, backups), in bytes."""
    total = 0
    for directory, _subdirectories, files in os.walk(file_store().path(f"t/{tenant_id}")):
        for name in files:
            try:
                total += os.stat(os.path.join(directory, name)).st_size
            except OSError:  # deleted meanwhile
                continue
    return total
