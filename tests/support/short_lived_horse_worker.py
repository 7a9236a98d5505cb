"""The project's worker with work horses that run two jobs each, then are replaced (burst mode).

python -m tests.support.short_lived_horse_worker      (environment as for ``flask --app wsgi worker``)
"""

from app import create_app
from app.config import config_from_env
from workers.worker import AppWorker, run_worker


class TwoJobsPerHorse(AppWorker):
    jobs_per_horse = 2


if __name__ == "__main__":
    run_worker(create_app(config_from_env()), burst=True, worker_class=TwoJobsPerHorse)
