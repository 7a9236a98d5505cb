"""A private PostgreSQL cluster for tests that stop, restart, copy or kill the database.

The session's shared server must never go down under other tests, so fault and backup tests
make their own: ``initdb`` into a temporary directory, a server on a free local port, trust
authentication for local TCP connections. As root the cluster belongs to the ``postgres`` user
(PostgreSQL refuses to run as root), as in ``scripts/test.sh``. The binaries are those of the
installed server (``/usr/lib/postgresql/<version>/bin``, else ``initdb`` on the PATH).

    cluster = PostgresCluster.create()        # initdb and start
    cluster.create_database("worklane")
    cluster.url("worklane")                   # postgresql://postgres@127.0.0.1:<port>/worklane
    cluster.restart()                         # pg_ctl restart -m fast
    cluster.stop(); cluster.start()
    cluster.remove()                          # stop (immediate) and delete the directory

Starting one is a process: tests using it need ``@pytest.mark.processes``.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SUPERUSER = "postgres"

#: Settings of a throw-away cluster: durability off (a test never survives a power cut),
#: enough connections for a live server and the test's own.
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
}


class ClusterError(RuntimeError):
    """A PostgreSQL tool failed; the message holds its output and the server's log."""


def postgres_bindir() -> Path:
    """The directory of the installed PostgreSQL server binaries (initdb, pg_ctl, pg_dump …)."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(os.path.join(candidate, "initdb"), os.X_OK):
            return Path(candidate)
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise ClusterError("PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresCluster:
    """One PostgreSQL server in its own directory: data, socket and log."""

    def __init__(
        self,
        directory: Path,
        port: int | None = None,
        bindir: Path | None = None,
        settings: dict[str, str] | None = None,
    ):
        self.directory = Path(directory)
        self.data = self.directory / "data"
        self.socket_dir = self.directory / "socket"
        self.log_path = self.directory / "postgres.log"
        self.port = port or _free_port()
        self.bindir = bindir or postgres_bindir()
        #: Server settings (``-c name=value``), kept across restarts.
        self.settings = {**SERVER_SETTINGS, **(settings or {})}
        self.run_as = ["runuser", "-u", SUPERUSER, "--"] if os.geteuid() == 0 else []

    # --- life cycle -----------------------------------------------------------------------

    @classmethod
    def create(cls, parent: str | os.PathLike | None = None, **settings: str) -> PostgresCluster:
        """A new, started cluster in a fresh directory under ``parent`` (default: the temp dir).

        ``settings`` are extra server settings (``wal_level="replica"`` …), kept for restarts.
        """
        directory = Path(tempfile.mkdtemp(prefix="worklane-pg-", dir=parent))
        cluster = cls(directory, settings=settings)
        try:
            cluster.initdb()
            cluster.start()
        except BaseException:
            cluster.remove()
            raise
        return cluster

    def initdb(self) -> None:
        # The server's user must reach its directories (a root-owned temp dir is 0700).
        self.directory.chmod(0o755)
        for path in (self.data, self.socket_dir):
            path.mkdir(mode=0o700, exist_ok=True)
            self._own(path)
        self.log_path.touch()
        self._own(self.log_path)
        self._tool(
            "initdb", "-D", self.data, "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._tool(
            "pg_ctl", "-D", self.data, "-l", self.log_path, "-w", "-t", "60", "-o", self._options(), "start"
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: roll back open transactions; ``immediate``: like a crash)."""
        self._tool("pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, mode: str = "fast") -> None:
        """``pg_ctl restart``: every connection is cut, the server answers again when it returns."""
        self._tool(
            "pg_ctl", "-D", self.data, "-l", self.log_path, "-m", mode, "-w", "-t", "60",
            "-o", self._options(), "restart",
        )  # fmt: skip

    def kill(self) -> None:
        """Stop the server the way a crash does (``immediate``: no shutdown checkpoint)."""
        self.stop(mode="immediate")

    @property
    def running(self) -> bool:
        status = subprocess.run(
            [*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
            text=True,
        )
        return status.returncode == 0

    def remove(self) -> None:
        """Stop the server if it runs and delete its directory."""
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                [
                    *self.run_as,
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
                capture_output=True,
            )
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    # --- using it -------------------------------------------------------------------------

    def url(self, database: str = "postgres", user: str = SUPERUSER) -> str:
        """A ``postgresql://`` URL (TCP, trust authentication) for ``user`` on ``database``."""
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def environ(self) -> dict[str, str]:
        """``PG*`` variables that point the client tools (psql, pg_dump …) at this cluster."""
        return {"PGHOST": "127.0.0.1", "PGPORT": str(self.port), "PGUSER": SUPERUSER}

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` as the superuser (stopping at the first error); the output, unaligned."""
        return self._client(
            "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql
        ).stdout

    def create_database(self, name: str, owner: str | None = None) -> None:
        self._client("createdb", *(["-O", owner] if owner else []), name)

    # --- plumbing -------------------------------------------------------------------------

    def _options(self) -> str:
        settings = " ".join(f"-c {key}={value}" for key, value in self.settings.items())
        return f"-p {self.port} -k {self.socket_dir} {settings}"

    def _own(self, path: Path) -> None:
        if self.run_as:
            shutil.chown(path, SUPERUSER)

    def _tool(self, name: str, *args) -> subprocess.CompletedProcess:
        """A server-side tool, run as the cluster's owner."""
        return self._run([*self.run_as, str(self.bindir / name), *map(str, args)])

    def _client(self, name: str, *args) -> subprocess.CompletedProcess:
        """A client tool (psql, createdb …), connecting over TCP as the superuser."""
        return self._run([str(self.bindir / name), *map(str, args)], env={**os.environ, **self.environ()})

    def _run(self, command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            log = self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""
            raise ClusterError(
                f"{' '.join(command)} exited with {result.returncode}:\n{result.stdout}{result.stderr}"
                f"\n--- server log (end) ---\n{log}"
            )
        return result


# --- Worklane on a private cluster ------------------------------------------------------------


def with_worklane_database(cluster: PostgresCluster, database: str) -> PostgresCluster:
    """Give ``cluster`` an empty ``database`` with Worklane's roles, as the session's test
    database has them (the owner that migrates, the app role under row-level security)."""
    from tests.conftest import POSTGRES_SETUP

    cluster.create_database(database)
    cluster.psql(POSTGRES_SETUP, database)
    return cluster


def worklane_env(test_env: dict[str, str], cluster: PostgresCluster, database: str, **env: str) -> dict:
    """The environment of an app (or worker) on ``database`` of ``cluster``: the app role's URL,
    the owner's for migrations, and ``env`` on top."""
    from tests.conftest import APP_ROLE, OWNER_ROLE

    return {
        **test_env,
        "DATABASE_URL": cluster.url(database, APP_ROLE),
        "DATABASE_MIGRATION_URL": cluster.url(database, OWNER_ROLE),
        **env,
    }
