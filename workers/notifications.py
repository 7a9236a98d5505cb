"""Old path of the jobs of the daily digest, kept for one release: RQ stores a job's function path, so
a job queued as ``workers.notifications.…`` before the deploy still runs. Remove in the next
release.
"""

from __future__ import annotations

from app.notifications.jobs import send_daily_digests

__all__ = ["send_daily_digests"]
