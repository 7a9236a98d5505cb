"""Old path of the jobs of computing reports, kept for one release: RQ stores a job's function path, so
a job queued as ``workers.reports.…`` before the deploy still runs. Remove in the next release.
"""

from __future__ import annotations

from app.reports.jobs import compute_reports

__all__ = ["compute_reports"]
