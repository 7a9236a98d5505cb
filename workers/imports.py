"""Old path of the jobs of the CSV import, kept for one release: RQ stores a job's function path, so a
job queued as ``workers.imports.…`` before the deploy still runs. Remove in the next release.
"""

from __future__ import annotations

from app.imports.jobs import import_issues, purge_stale_uploads

__all__ = ["import_issues", "purge_stale_uploads"]
