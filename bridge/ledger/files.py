"""The ledger file, checked before it is believed: every way it can be unusable gets one
sentence naming the file and what to do, before any vendor call, and the file is left as
it was. A ledger is created only where no file exists, and only when the command is one
documented to create it (`bridge init`, `sandbox serve --write-config`, the first
`link import`).

**SQLite's `quick_check` reads every page** (0.1 s at 100,000 links, over a second at a
million: most of an idle scheduled run), so it is skipped when it would check what bridge
itself left. When bridge closes a ledger and no other connection holds it (the WAL is
checkpointed away), it writes a *seal* beside it (`bridge.db-sealed`): the file's
device, inode, size, and modification and change times to the nanosecond, and when the
file last passed a full check. The next open checks in full unless the seal names this
very file as it is now, no WAL with frames is beside it (no run killed mid-way, no other
process writing), and the last full check passed less than an hour ago
(`FULL_CHECK_EVERY`: at a million links one scheduled run in twelve pays it).

Why that is safe: the change time (`ctime`) is set by the kernel on every write,
truncation, copy over the file, restore or `chmod`, and no program can set it back; so a
file that anything but bridge touched since its last close is checked in full before it
is believed, as before. A filesystem with whole-second times is never trusted (a change
within the second would not show). What a seal cannot tell from bridge's own writes is
damage while bridge has the file open (another program writing over a ledger in use) or
without any write (a failing disk, a bug in SQLite or the kernel): the hourly full check
and `bridge check` (SQLite's `integrity_check`, every time) bound how long that goes
unseen, and SQLite refuses a damaged page a run reads (`database disk image is
malformed`): the run stops, and nothing of its open transaction is kept.
"""

from __future__ import annotations

import json
import math
import os
import stat
import time
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from bridge.errors import BridgeError
from bridge.ledger.dialect import Dialect

__all__ = [
    "FULL_CHECK_EVERY",
    "SEAL_SUFFIX",
    "SQLITE_HEADER",
    "LedgerFileError",
    "check_ledger_file",
    "check_ledger_open",
    "seal_ledger",
]

SQLITE_HEADER = b"SQLite format 3\x00"
#: how long opening waits for another process's write transaction before calling it locked
LOCK_PROBE_SECONDS = 5.0
#: beside the ledger: how bridge's last close left it (see the module docstring)
SEAL_SUFFIX = "-sealed"
#: a sealed ledger is still checked in full when its last full check is older than this
FULL_CHECK_EVERY = 3600.0
_SECOND_NS = 1_000_000_000
#: per ledger this process opened: when it last passed a full check (its seal's, when
#: trusted), and the file as the open found it
_opened: dict[str, tuple[float, list[int] | None]] = {}


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
                f"ledger {path} does not exist: create it with `bridge init --ledger-only` "
                "(or the first `bridge link import`), or fix [ledger] url"
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
    now = time.time()
    sealed_at = _sealed_check(path, now)  # read before a connection makes a WAL beside it
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
            problems = dialect.quick_check(cursor) if sealed_at is None else []
            if problems:
                raise LedgerFileError(
                    f"ledger {path} is corrupt (integrity check: {'; '.join(problems[:3])}): "
                    "restore it from a backup"
                )
            dialect.probe_write_lock(cursor, wait_seconds=LOCK_PROBE_SECONDS)
            checked_at = now if sealed_at is None else sealed_at
            _opened[_key(path)] = (checked_at, _identity(path))
        finally:
            cursor.close()
    except LedgerFileError:
        raise
    except Exception as exc:  # the driver's own errors (sqlite3.DatabaseError and kin)
        raise _unusable(path, str(exc)) from None
    finally:
        raw.close()


def seal_ledger(path: Path) -> None:
    """After bridge closed the ledger: seal it as it is now (see the module docstring),
    when this process checked it (or trusted its seal) on open, wrote it since, and no
    other connection left a WAL beside it. Otherwise the seal stays as it was (a command
    that wrote nothing leaves the ledger's files as they were): a seal that no longer
    names the file as it is only ever costs the next open a full check."""
    checked_at, opened = _opened.get(_key(path), (None, None))
    identity = _identity(path)
    if checked_at is None or identity is None or identity == opened or _wal_in_use(path):
        return
    seal = _seal_path(path)
    partial = seal.with_name(f"{seal.name}.tmp")
    try:
        # private to its owner, as the ledger is (`engine._create_private_file`)
        partial.unlink(missing_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps({"checked_at": checked_at, "file": identity}))
        os.replace(partial, seal)
    except OSError:  # a seal is an optimisation: without one, the next open checks in full
        partial.unlink(missing_ok=True)


def _sealed_check(path: Path, now: float) -> float | None:
    """When the ledger last passed a full check, if its seal says it is untouched since
    bridge closed it and that check is recent; None when it must be checked in full."""
    try:
        seal = json.loads(_seal_path(path).read_text(encoding="utf-8"))
        checked_at, identity = float(seal["checked_at"]), seal["file"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    recent = math.isfinite(checked_at) and 0 <= now - checked_at < FULL_CHECK_EVERY
    if not recent or _wal_in_use(path):
        return None
    current = _identity(path)
    return checked_at if current is not None and current == identity else None


def _identity(path: Path) -> list[int] | None:
    """What changes whenever anything writes the file; None where the filesystem keeps
    whole seconds only (a change within the second would not show)."""
    try:
        info = path.stat()
    except OSError:
        return None
    if info.st_mtime_ns % _SECOND_NS == 0 and info.st_ctime_ns % _SECOND_NS == 0:
        return None
    return [info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]


def _wal_in_use(path: Path) -> bool:
    """Whether a WAL with frames is beside the ledger: a connection still open, or a run
    killed before its last close (SQLite removes the WAL when the last one closes)."""
    try:
        return Path(f"{path}-wal").stat().st_size > 0
    except OSError:
        return False


def _seal_path(path: Path) -> Path:
    return path.with_name(f"{path.name}{SEAL_SUFFIX}")


def _key(path: Path) -> str:
    return os.path.realpath(path)


def _unusable(path: Path, text: str) -> LedgerFileError:
    if "locked" in text or "busy" in text:
        return LedgerFileError(
            f"ledger {path} is locked by another process (waited {LOCK_PROBE_SECONDS:.0f} s): "
            f"let it finish, or find it with `fuser {path}`"
        )
    if "malformed" in text or "not a database" in text or "corrupt" in text:
        return LedgerFileError(f"ledger {path} is corrupt ({text}): restore it from a backup")
    return LedgerFileError(f"ledger {path} cannot be used ({text})")
