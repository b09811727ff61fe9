# SQLite only: the seal is a file beside the SQLite ledger and skips its quick_check.
"""The ledger's seal (`bridge/ledger/files.py`): SQLite's `quick_check` reads every page, so
an open skips it only for the file exactly as bridge's own last close left it, with a full
check passed less than an hour ago. Anything else that touched the file since is checked in
full, and a corrupt ledger is still refused."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bridge.ledger import Ledger
from bridge.ledger.dialect import SQLiteDialect
from bridge.ledger.files import FULL_CHECK_EVERY, SEAL_SUFFIX, LedgerFileError
from bridge.ledger.store import LinkRow
from bridge.vendors.registry import SIDES


@pytest.fixture
def full_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files each full check (`quick_check`) of this test ran on."""
    checked: list[str] = []
    original = SQLiteDialect.quick_check

    def counting(self: SQLiteDialect, cursor: Any) -> list[str]:
        cursor.execute("PRAGMA database_list")
        checked.append(str(cursor.fetchall()[0][2]))
        return original(self, cursor)

    monkeypatch.setattr(SQLiteDialect, "quick_check", counting)
    return checked


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    """A ledger of some 40 pages, opened (checked in full), written and closed: sealed."""
    path = tmp_path / "bridge.db"
    with Ledger.open(f"sqlite:///{path}", sides=SIDES) as created:
        rows = [LinkRow(n + 2, 100_000 + n, 7_000_000 + n) for n in range(400)]
        assert created.import_links(rows, origin="csv").ok
    assert not _seal(path).exists()  # created here, never checked: nothing to seal
    _run(path)
    return path


def _open(path: Path) -> Ledger:
    return Ledger.open(f"sqlite:///{path}", create=False, sides=SIDES)


def _run(path: Path) -> None:
    """Open, write (as every run does) and close."""
    with _open(path) as opened:
        count = opened.count_links()
        opened.add_link(1_000 + count, 2_000 + count, origin="csv")


def _seal(path: Path) -> Path:
    return path.with_name(path.name + SEAL_SUFFIX)


def test_a_ledger_as_bridge_left_it_is_not_checked_again(
    ledger: Path, full_checks: list[str]
) -> None:
    assert _seal(ledger).stat().st_mode & 0o077 == 0  # private, as the ledger is
    for _ in range(3):
        _run(ledger)  # each run writes: the seal follows the file
    assert full_checks == []


def test_a_command_that_writes_nothing_leaves_the_ledgers_files_as_they_were(
    tmp_path: Path, full_checks: list[str]
) -> None:
    path = tmp_path / "bridge.db"
    Ledger.open(f"sqlite:///{path}", sides=SIDES).close()
    before = sorted(p.name for p in tmp_path.iterdir())
    _open(path).close()
    assert sorted(p.name for p in tmp_path.iterdir()) == before == ["bridge.db"]
    assert full_checks == [str(path)]


def test_a_ledger_damaged_in_place_after_its_seal_is_refused(
    ledger: Path, full_checks: list[str]
) -> None:
    """Same file, same size, pages scribbled over (as a failed restore or a stray write
    would): the change time moved, so the open checks in full and refuses it."""
    with ledger.open("r+b") as handle:
        handle.seek(8192)
        handle.write(b"\xa5" * 8192)
    with pytest.raises(LedgerFileError, match="is corrupt"):
        _open(ledger)
    assert full_checks == [str(ledger)]


def test_a_touch_that_restores_the_modification_time_still_costs_a_full_check(
    ledger: Path, full_checks: list[str]
) -> None:
    info = ledger.stat()
    os.utime(ledger, ns=(info.st_atime_ns, info.st_mtime_ns))  # the change time moves on
    _open(ledger).close()
    assert full_checks == [str(ledger)]


def test_a_wal_left_with_frames_costs_a_full_check(ledger: Path, full_checks: list[str]) -> None:
    """Another connection still writing, or a run killed before its last close."""
    other = sqlite3.connect(ledger)
    try:
        other.execute("PRAGMA user_version = 7")  # a write: page 1 into the WAL
        assert Path(f"{ledger}-wal").stat().st_size > 0
        _open(ledger).close()
    finally:
        other.close()
    assert full_checks == [str(ledger)]


def test_an_old_full_check_is_done_again_and_the_seal_renewed(
    ledger: Path, full_checks: list[str]
) -> None:
    seal = json.loads(_seal(ledger).read_text(encoding="utf-8"))
    seal["checked_at"] -= FULL_CHECK_EVERY + 1
    _seal(ledger).write_text(json.dumps(seal), encoding="utf-8")
    _run(ledger)
    _run(ledger)
    assert full_checks == [str(ledger)]
    renewed = json.loads(_seal(ledger).read_text(encoding="utf-8"))
    assert renewed["checked_at"] > seal["checked_at"] + FULL_CHECK_EVERY


@pytest.mark.parametrize("seal", ["", "{", "[]", '{"checked_at": "soon", "file": 5}', "null"])
def test_an_unreadable_seal_costs_a_full_check_and_no_error(
    ledger: Path, full_checks: list[str], seal: str
) -> None:
    _seal(ledger).write_text(seal, encoding="utf-8")
    _open(ledger).close()
    assert full_checks == [str(ledger)]


def test_a_ledger_copied_with_its_seal_is_checked_in_full(
    ledger: Path, full_checks: list[str], tmp_path: Path
) -> None:
    copy = tmp_path / "copy" / "bridge.db"
    copy.parent.mkdir()
    shutil.copy2(ledger, copy)
    shutil.copy2(_seal(ledger), _seal(copy))
    _open(copy).close()
    assert full_checks == [str(copy)]


def test_a_refused_open_writes_no_seal(tmp_path: Path) -> None:
    path = tmp_path / "bridge.db"
    path.write_bytes(b"SQLite format 3\x00" + b"\x00" * 4000)
    with pytest.raises(LedgerFileError):
        _open(path)
    assert not _seal(path).exists()
