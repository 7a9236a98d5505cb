"""Old path of the jobs of delivering the outbox, kept for one release: RQ stores a job's function
path, so a job queued as ``workers.mail.…`` before the deploy still runs. Remove in the next
release.
"""

from __future__ import annotations

from app.core.mail_delivery import deliver_outbox_mail, sweep_outbox

__all__ = ["deliver_outbox_mail", "sweep_outbox"]
