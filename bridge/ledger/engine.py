"""Opening the ledger database: URL handling, file mode, SQLite pragmas, write locking."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

from bridge.errors import BridgeError
from bridge.ledger.files import BUSY_TIMEOUT_MS, check_ledger_file, check_ledger_open

__all__ = ["BUSY_TIMEOUT_MS", "LedgerURLError", "create_ledger_engine", "sqlite_path"]


class LedgerURLError(BridgeError, ValueError):
    """The ledger URL cannot be used."""


def sqlite_path(url: str | URL) -> Path | None:
    """The database file of a SQLite URL (None for other backends and in-memory SQLite)."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(database)


def _create_private_file(path: Path) -> None:
    """Create the database file readable by its owner only, before SQLite opens it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)
    os.chmod(path, 0o600)  # whatever the umask said


def create_ledger_engine(url: str, *, create: bool = True) -> Engine:
    """An engine whose SQLite connections use WAL, synchronous=FULL, foreign keys and a
    busy timeout, and whose transactions take the write lock up front (BEGIN IMMEDIATE),
    so that two processes never deadlock upgrading a read lock."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # SQLAlchemy raises ArgumentError with the URL in it
        raise LedgerURLError(f"not a database URL: {type(exc).__name__}") from None
    path = sqlite_path(parsed)
    if path is not None:
        check_ledger_file(path, create=create)
        existing = path.exists()
        if not existing:
            _create_private_file(path)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        connect_args = {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    engine = create_engine(parsed, connect_args=connect_args)
    if parsed.get_backend_name() == "sqlite":
        # WAL is a property of the file: set once when the ledger is made, never on a file
        # that may not be a ledger (the checks below must leave such a file as it was)
        _configure_sqlite(engine, wal=path is not None and not existing)
        if path is not None and existing:
            try:
                check_ledger_open(engine, path)
            except BaseException:
                engine.dispose()
                raise
    return engine


def _configure_sqlite(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
