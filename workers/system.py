"""Old path of the jobs of the system check and the purge of job records, kept for one release: RQ
stores a job's function path, so a job queued as ``workers.system.…`` before the deploy still runs.
Remove in the next release.
"""

from __future__ import annotations

from app.tasks.jobs import purge_finished_jobs, run_system_check

__all__ = ["purge_finished_jobs", "run_system_check"]
