"""Old path of the jobs of tenant exports, kept for one release: RQ stores a job's function path, so a
job queued as ``workers.exports.…`` before the deploy still runs. Remove in the next release.
"""

from __future__ import annotations

from app.exports.jobs import enqueue_nightly_exports, export_organization

__all__ = ["enqueue_nightly_exports", "export_organization"]
