"""Whether a flag is on for an organization: ``enabled(name, organization_id)``.

A percentage rollout puts an organization in by a stable hash of the flag's name and the
organization's id: its bucket (0 to 9,999) is the same on every process and every day, and it is in
while the bucket is below the percentage times 100, so an organization in at 10% is still in at
20%; each flag buckets organizations independently of the others.

The operators' settings (the ``feature_flags`` rows) are kept in each process, read again when
the version ``g:version:flags`` in the cache's Redis has moved (an operator's change moves it at
commit) or after ``MEMO_SECONDS``, whichever comes first: every web and worker process sees a
change on its next check. The version is read once per request, along with the person's session
when they are signed in (``app/auth/login.py``), so a check costs no round trip of its own there;
elsewhere (a job, a signed-out page) the first check of a request or job costs one ``GET``.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from hashlib import sha256

from sqlalchemy import select

from app.core import cache
from app.extensions import db
from app.flags.catalog import FLAGS
from app.models import FeatureFlag

#: The cache topic whose version moves when an operator changes a flag.
TOPIC = "flags"
#: The longest a process keeps the settings without reading them again (should the version key
#: be lost with the cache Redis, a change still shows within this long).
MEMO_SECONDS = 60.0
BUCKETS = 10_000


@dataclass(frozen=True)
class Setting:
    mode: str
    percentage: int = 0
    organization_ids: frozenset[str] = frozenset()


_memo: dict = {"version": None, "read_at": 0.0, "settings": {}}
_memo_lock = threading.Lock()


def bucket(name: str, organization_id) -> int:
    """The organization's place (0 to 9,999) in the flag's rollout, the same everywhere, always."""
    digest = sha256(f"{name}:{organization_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_percentage(name: str, organization_id, percentage: int) -> bool:
    return bucket(name, organization_id) < percentage * (BUCKETS // 100)


def _load() -> dict[str, Setting]:
    return {
        row.name: Setting(row.mode, row.percentage, frozenset(map(str, row.organization_ids or ())))
        for row in db.session.scalars(select(FeatureFlag))
    }


def settings() -> dict[str, Setting]:
    """The operators' settings by flag name, from this process's memo while it is current."""
    version = cache.global_version(TOPIC)
    now = time.monotonic()
    memo = _memo
    if memo["version"] == version and now - memo["read_at"] < MEMO_SECONDS:
        return memo["settings"]
    loaded = _load()
    with _memo_lock:
        _memo.update(version=version, read_at=now, settings=loaded)
    return loaded


def forget() -> None:
    """Drop this process's memo (the next check reads the settings again)."""
    with _memo_lock:
        _memo.update(version=None, read_at=0.0, settings={})


def enabled(name: str, organization_id: uuid.UUID | str | None) -> bool:
    """Whether the flag ``name`` (declared in ``app/flags/catalog.py``) is on for the organization."""
    flag = FLAGS[name]
    setting = settings().get(name)
    if setting is None:
        return flag.default_on
    if setting.mode == FeatureFlag.ON:
        return True
    if setting.mode == FeatureFlag.OFF or organization_id is None:
        return False
    if setting.mode == FeatureFlag.LISTED:
        return str(organization_id) in setting.organization_ids
    return in_percentage(name, organization_id, setting.percentage)
