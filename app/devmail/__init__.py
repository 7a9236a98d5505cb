"""Mail in development: a local SMTP sink that keeps every message as a file, and pages to read them.

The sink (``python -m app.devmail.sink``) stores each message it receives as
``<maildir>/<UTC timestamp>-<uuid>.eml``; the ``/dev/mail`` pages
(:mod:`app.devmail.routes`, registered only in development) list and show
them. Both sides agree on file names here.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

#: A stored message's file name: sorts by arrival time, and is all a URL may name.
MESSAGE_NAME = re.compile(r"\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{32}\.eml")


def new_message_name(now: datetime | None = None) -> str:
    """A fresh file name for a message received ``now`` (default: this moment)."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S.%f}Z-{uuid.uuid4().hex}.eml"


def is_message_name(name: str) -> bool:
    return MESSAGE_NAME.fullmatch(name) is not None
