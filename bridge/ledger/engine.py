"""Opening the ledger database: URL handling, the backend's dialect, the file's mode."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url

from bridge.errors import BridgeError
from bridge.ledger.dialect import DIALECTS, Dialect, dialect_for
from bridge.ledger.files import check_ledger_file, check_ledger_open

__all__ = ["LedgerURLError", "create_ledger_engine", "ledger_dialect", "pair_ledger_url"]


class LedgerURLError(BridgeError, ValueError):
    """The ledger URL cannot be used."""


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except Exception as exc:  # SQLAlchemy raises ArgumentError with the URL in it
        raise LedgerURLError(f"not a database URL: {type(exc).__name__}") from None


def ledger_dialect(url: str) -> Dialect:
    """The dialect for a ledger URL, or `LedgerURLError` for a backend bridge cannot use."""
    parsed = _parse(url)
    dialect = dialect_for(parsed)
    if dialect is None:
        raise LedgerURLError(
            f"bridge cannot keep its ledger in {parsed.get_backend_name()!r} (supported: "
            f"{', '.join(sorted(DIALECTS))})"
        )
    return dialect


def pair_ledger_url(url: str, pair: str) -> str:
    """The URL of a named pair's ledger beside the one `url` names (docs/pairs.md)."""
    try:
        named = ledger_dialect(url).namespaced(_parse(url), pair)
    except ValueError as exc:
        raise LedgerURLError(str(exc)) from None
    return named.render_as_string(hide_password=False)


def _create_private_file(path: Path) -> None:
    """Create the database file readable by its owner only, before the driver opens it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)
    os.chmod(path, 0o600)  # whatever the umask said


def create_ledger_engine(url: str, dialect: Dialect, *, create: bool = True) -> Engine:
    """An engine set up by the dialect (connection settings, write transactions that take
    the lock up front); a database file is checked before it is believed, and created
    private to its owner."""
    parsed = _parse(url)
    path = dialect.database_file(parsed)
    existing = False
    if path is not None:
        check_ledger_file(path, create=create)
        existing = path.exists()
        if not existing:
            _create_private_file(path)
    engine = create_engine(parsed, connect_args=dialect.connect_args())
    dialect.prepare_engine(engine, new_file=path is not None and not existing)
    try:
        if path is not None and existing:
            check_ledger_open(engine, path, dialect)
        elif dialect.server:
            _check_server(engine, parsed, dialect, create=create)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _check_server(engine: Engine, url: URL, dialect: Dialect, *, create: bool) -> None:
    """A ledger on a database server, checked before it is believed: reachable, and either
    a bridge ledger (its `meta` table) or, where creating is allowed, an empty database.
    The server's database itself is the DBA's to create; bridge creates only its tables."""
    where = url.render_as_string(hide_password=True)
    try:
        raw = engine.raw_connection()
    except Exception as exc:  # the driver's own error: server down, no such database, auth
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise LedgerURLError(f"cannot connect to the ledger {where}: {reason}") from None
    try:
        cursor = raw.cursor()
        if create:
            dialect.create_namespace(cursor, url)
            raw.commit()
        tables = dialect.table_names(cursor)
        cursor.close()
        raw.rollback()
    finally:
        raw.close()
    if "meta" in tables:
        return
    if tables:
        raise LedgerURLError(
            f"the database {where} has tables but is not a bridge ledger (no meta table): "
            "give bridge a database of its own"
        )
    if not create:
        raise LedgerURLError(
            f"the database {where} holds no ledger yet: create it with `bridge init "
            "--ledger-only` (or the first `bridge link import`)"
        )
