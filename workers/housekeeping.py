"""Old path of the jobs of the periodic clean-ups, kept for one release: RQ stores a job's function
path, so a job queued as ``workers.housekeeping.…`` before the deploy still runs. Remove in the next
release.
"""

from __future__ import annotations

from app.core.mail_delivery import purge_sent_mail
from app.exports.jobs import delete_expired_exports
from app.orgs.jobs import delete_expired_invitations
from app.tasks.jobs import delete_old_tasks

__all__ = ["delete_expired_exports", "delete_expired_invitations", "delete_old_tasks", "purge_sent_mail"]
