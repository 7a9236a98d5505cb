"""A streaming replica of a private PostgreSQL cluster, made the way an operator makes one."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.support.pgcluster import SUPERUSER, PostgresCluster


def replica_of(primary: PostgresCluster, **settings: str) -> PostgresCluster:
    """A hot standby of ``primary``, started: ``pg_basebackup -R`` streams a copy and writes the
    standby's connection settings; ``settings`` are extra server settings
    (``recovery_min_apply_delay="2s"`` …). The primary's default ``pg_hba.conf`` (initdb's) lets
    local TCP replication connections in."""
    replica = PostgresCluster(
        Path(tempfile.mkdtemp(prefix="worklane-pg-replica-")), bindir=primary.bindir, settings=settings
    )
    try:
        replica.directory.chmod(0o755)
        for path in (replica.data, replica.socket_dir):
            path.mkdir(mode=0o700)
            replica._own(path)
        replica.log_path.touch()
        replica._own(replica.log_path)
        replica._tool(
            "pg_basebackup", "-h", "127.0.0.1", "-p", primary.port, "-U", SUPERUSER,
            "-D", replica.data, "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        replica.start()
    except BaseException:
        replica.remove()
        raise
    return replica
