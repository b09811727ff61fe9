"""A throwaway PostgreSQL cluster for the tests: `initdb` into a temporary folder, `pg_ctl
start` on a free loopback port, removed at the end. No mock database: the ledger's
PostgreSQL dialect is tested against the real server Debian ships.

As root (CI containers), the server runs as the `postgres` user (`runuser -u postgres --`),
since initdb refuses root; the folder is made that user's. Host connections need a password
(scram-sha-256), given to the driver the way a user would: `PGPASSWORD`.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import psycopg
from psycopg import sql

__all__ = ["Cluster", "ClusterUnavailableError", "find_bin_dir"]

#: where Debian's `postgresql` package puts the server programs, newest first
_DEBIAN_BIN = Path("/usr/lib/postgresql")
#: the role the tests connect as
USER = "bridge"


class ClusterUnavailableError(RuntimeError):
    """No PostgreSQL server programs on this machine."""


def find_bin_dir() -> Path:
    """The folder holding initdb and pg_ctl: $BRIDGE_PG_BIN, else Debian's newest, else PATH."""
    given = os.environ.get("BRIDGE_PG_BIN")
    if given:
        return Path(given)
    if _DEBIAN_BIN.is_dir():
        versions = sorted(
            (p for p in _DEBIAN_BIN.iterdir() if (p / "bin" / "initdb").exists()),
            key=lambda p: int(p.name) if p.name.isdigit() else 0,
            reverse=True,
        )
        if versions:
            return versions[0] / "bin"
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise ClusterUnavailableError(
        "no PostgreSQL server programs (initdb, pg_ctl): install them with "
        "`apt-get install -y postgresql`, or set BRIDGE_PG_BIN to their folder"
    )


def free_port() -> int:
    """A loopback port nothing listens on now (the server's, a test's serve or a refused
    connection's)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """One server on 127.0.0.1, its data in a temporary folder; `stop()` removes both."""

    def __init__(self) -> None:
        self.bin = find_bin_dir()
        self.as_postgres = os.geteuid() == 0
        self.folder = Path(tempfile.mkdtemp(prefix="bridge-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.password = secrets.token_urlsafe(16)
        self._counter = 0
        if self.as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)

    def _run(self, program: str, *args: str) -> None:
        command: Sequence[str] = [str(self.bin / program), *args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.folder, timeout=120)

    def start(self, *, durable: bool = False, max_connections: int = 100) -> Cluster:
        """initdb (password auth on loopback, the password in a file read once) and start,
        tuned for throwaway data: no fsync, small shared memory. `durable` keeps the
        server's own defaults instead (fsync, synchronous commit: a benchmark's fair
        match for SQLite's `synchronous=FULL`). `max_connections`: more for a benchmark
        whose workers each hold connections to many pairs' ledgers."""
        pwfile = self.folder / "pw"
        pwfile.write_text(self.password + "\n", encoding="utf-8")
        if self.as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        pwfile.chmod(0o600)
        self._run(
            "initdb", "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        pwfile.unlink()
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.folder} -c max_connections={max_connections}"
        )
        if not durable:
            options += (
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
                " -c shared_buffers=32MB"
            )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.folder / "log"), "-w",
            "-t", "60", "-o", options, "start",
        )  # fmt: skip
        return self

    def server_pid(self) -> int:
        """The postmaster's process id (the first line of `postmaster.pid`)."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    # --- databases --------------------------------------------------------------------

    def url(self, database: str) -> str:
        """The ledger URL of `database`: no password in it (the driver reads PGPASSWORD)."""
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=USER,
            password=self.password,
            dbname="postgres",
            autocommit=True,
        )

    def create_database(self) -> str:
        """A new empty database (from template0, so nothing leaks between tests)."""
        self._counter += 1
        name = f"t{os.getpid()}_{self._counter}"
        with self.admin() as connection:
            connection.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
            )
        return name

    def drop_database(self, name: str) -> None:
        """Drop `name`, ending whatever connections a test left open."""
        with self.admin() as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
