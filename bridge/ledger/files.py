"""The ledger file, checked before it is believed: every way it can be unusable gets one
sentence naming the file and what to do, before any vendor call, and the file is left as
it was. A ledger is created only where no file exists, and only when the command is one
documented to create it (`bridge init`, `sandbox serve --write-config`, the first
`link import`)."""

from __future__ import annotations

import stat
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from bridge.errors import BridgeError
from bridge.ledger.dialect import Dialect

__all__ = ["SQLITE_HEADER", "LedgerFileError", "check_ledger_file", "check_ledger_open"]

SQLITE_HEADER = b"SQLite format 3\x00"
#: how long opening waits for another process's write transaction before calling it locked
LOCK_PROBE_SECONDS = 5.0


class LedgerFileError(BridgeError, ValueError):
    """The ledger file cannot be used as it is."""


def _writable(mode: int) -> bool:
    """By the file's mode bits, not `os.access`: root may write anything, and a ledger
    someone made read-only must still be refused."""
    return bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def check_ledger_file(path: Path, *, create: bool) -> None:
    """Raise `LedgerFileError` unless `path` is a ledger bridge can open, or (with
    `create`) a place where a new one may be created."""
    if not path.exists():
        if not create:
            raise LedgerFileError(
                f"ledger {path} does not exist: create it with `bridge init` (or the first "
                "`bridge link import`), or fix [ledger] url"
            )
        folder = path.parent
        if folder.exists() and not _writable(folder.stat().st_mode):
            raise LedgerFileError(
                f"cannot create the ledger {path}: the folder {folder} is read-only"
            )
        return
    if path.is_dir():
        raise LedgerFileError(f"ledger {path} is a folder, not a ledger file: fix [ledger] url")
    info = path.stat()
    if info.st_size == 0:
        raise LedgerFileError(
            f"ledger {path} is empty (0 bytes), not a ledger: bridge does not take over an "
            "existing file; move it away and run `bridge init`, or restore it from a backup"
        )
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise LedgerFileError(f"ledger {path} cannot be read ({exc.strerror})") from None
    if header != SQLITE_HEADER:
        raise LedgerFileError(
            f"ledger {path} is not a SQLite database, so not a bridge ledger: check [ledger] "
            "url, or restore the file from a backup"
        )
    if not _writable(info.st_mode):
        raise LedgerFileError(
            f"ledger {path} is read-only: bridge records every run in it; make it writable "
            f"(chmod u+w {path})"
        )
    if not _writable(path.parent.stat().st_mode):
        raise LedgerFileError(
            f"ledger {path} is in a read-only folder: SQLite writes its journal beside the "
            "file; make the folder writable"
        )


def check_ledger_open(engine: Engine, path: Path, dialect: Dialect) -> None:
    """On an existing database file, before any migration or vendor call: a bridge ledger
    (it has bridge's `meta` table), not corrupt, not locked by another process. Through
    the ledger's own connection pool: a second, raw connection opened and closed beside
    it could cost the process its SQLite locks (POSIX locks are per process)."""
    try:
        raw = engine.raw_connection()
    except DBAPIError as exc:
        raise _unusable(path, str(exc.orig)) from None
    except Exception as exc:  # the driver's own error, raised while connecting
        raise _unusable(path, str(exc)) from None
    try:
        cursor = raw.cursor()
        try:
            if "meta" not in dialect.table_names(cursor):
                raise LedgerFileError(
                    f"{path} is a SQLite database but not a bridge ledger (no meta table): "
                    "check [ledger] url; bridge does not take over another program's database"
                )
            problems = dialect.quick_check(cursor)
            if problems:
                raise LedgerFileError(
                    f"ledger {path} is corrupt (integrity check: {'; '.join(problems[:3])}): "
                    "restore it from a backup"
                )
            dialect.probe_write_lock(cursor, wait_seconds=LOCK_PROBE_SECONDS)
        finally:
            cursor.close()
    except LedgerFileError:
        raise
    except Exception as exc:  # the driver's own errors (sqlite3.DatabaseError and kin)
        raise _unusable(path, str(exc)) from None
    finally:
        raw.close()


def _unusable(path: Path, text: str) -> LedgerFileError:
    if "locked" in text or "busy" in text:
        return LedgerFileError(
            f"ledger {path} is locked by another process (waited {LOCK_PROBE_SECONDS:.0f} s): "
            f"let it finish, or find it with `fuser {path}`"
        )
    if "malformed" in text or "not a database" in text or "corrupt" in text:
        return LedgerFileError(f"ledger {path} is corrupt ({text}): restore it from a backup")
    return LedgerFileError(f"ledger {path} cannot be used ({text})")
