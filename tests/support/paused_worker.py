"""A worker that stops between taking a job and starting it, to be killed there by a test.

    python -m tests.support.paused_worker      (environment as for ``flask --app wsgi worker``)

It is the project's worker with one change: after the dequeue has claimed a job it records
the job id under ``paused-after-dequeue`` and waits, so the test can SIGKILL it in exactly
the window between dequeue and start.
"""

from app import create_app
from app.config import config_from_env
from workers.worker import AppWorker, run_worker


class PausedAfterDequeue(AppWorker):
    def execute_job(self, job, queue):
        self.connection.rpush("paused-after-dequeue", job.id)
        self.connection.blpop(["never-released"], timeout=300)
        super().execute_job(job, queue)


if __name__ == "__main__":
    run_worker(create_app(config_from_env()), worker_class=PausedAfterDequeue)
