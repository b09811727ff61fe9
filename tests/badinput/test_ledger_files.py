"""Ledger files bridge must refuse to believe: `bridge status`, `sync` and `report` on each.

`bridge/ledger/files.py` promises one sentence naming the file and what to do, exit 2,
before any vendor call, and the file left as it was (bridge creates a ledger only where no
file exists, and only for `init`, `sandbox serve --write-config` and the first `link
import`). Read-only is judged by the mode bits (these tests run as root, who may write
anything). No fixture holds these ledgers open, so the bytes of `bridge.db` and of every
sidecar beside it (`-wal`, `-shm`, `-journal`) are compared.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bridge.ledger import Ledger, LinkRow
from bridge.vendors.registry import SIDES
from tests.badinput.conftest import (
    Expect,
    Verdict,
    World,
    file_hashes,
    run_bridge,
    sandbox_world,
)

COMMANDS: dict[str, tuple[str, ...]] = {
    "status": ("status",),
    "sync": ("sync",),
    "report": ("report", "-o", "report.html"),
}


def _filled_ledger(path: Path, links: int = 400) -> None:
    """A real ledger of some 40 pages (links, pair states, an event), closed."""
    with Ledger.open(f"sqlite:///{path}", sides=SIDES) as ledger:
        rows = [LinkRow(n + 2, 100_000 + n, 7_000_000 + n) for n in range(links)]
        assert ledger.import_links(rows, origin="csv").ok


def zero_bytes(path: Path) -> None:
    path.write_bytes(b"")


def text_file(path: Path) -> None:
    path.write_text("milk\neggs\nbread\n", encoding="utf-8")


def another_programs_database(path: Path) -> None:
    path.unlink()
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    connection.execute("INSERT INTO customers (name) VALUES ('Ada'), ('Grace')")
    connection.commit()
    connection.close()


def corrupt_pages(path: Path) -> None:
    _filled_ledger(path)
    data = path.read_bytes()
    path.write_bytes(data[:8192] + b"\xa5" * 8192 + data[16384:])


def truncated(path: Path) -> None:
    _filled_ledger(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def read_only(path: Path) -> None:
    path.chmod(0o400)


def a_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def missing(path: Path) -> None:
    path.unlink()


def newer_schema(path: Path) -> None:
    connection = sqlite3.connect(path)
    connection.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    connection.commit()
    connection.close()


@dataclass(frozen=True)
class LedgerCase:
    id: str
    make: Callable[[Path], None]
    words: tuple[str, ...]
    commands: tuple[str, ...] = ("status", "sync", "report")
    #: the ledger lives in a folder of its own, made read-only
    read_only_folder: bool = False
    #: another process holds the ledger's write lock while the command runs
    locked: bool = False


CASES = [
    LedgerCase("zero-bytes", zero_bytes, ("bridge.db", "empty")),
    LedgerCase("a-text-file", text_file, ("bridge.db", "not a SQLite database")),
    LedgerCase(
        "another-programs-database", another_programs_database, ("bridge.db", "not a bridge ledger")
    ),
    LedgerCase("corrupt-pages", corrupt_pages, ("bridge.db", "corrupt")),
    LedgerCase("truncated-to-half", truncated, ("bridge.db", "corrupt")),
    LedgerCase("read-only-file", read_only, ("bridge.db", "read-only")),
    LedgerCase(
        "in-a-read-only-folder",
        lambda _p: None,
        ("bridge.db", "read-only folder"),
        read_only_folder=True,
    ),
    LedgerCase("a-folder", a_folder, ("bridge.db", "folder")),
    LedgerCase("missing", missing, ("bridge.db", "does not exist")),
    LedgerCase("newer-schema", newer_schema, ("schema", "999")),
    LedgerCase(
        "locked-by-another-process",
        lambda _p: None,
        ("bridge.db", "locked"),
        commands=("sync",),
        locked=True,
    ),
]
PARAMS = [
    pytest.param(case, command, id=f"{case.id}-{command}")
    for case in CASES
    for command in case.commands
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with sandbox_world(tmp_path_factory.mktemp("ledger") / "bridge") as world:
        world.link(3)
        yield world


@pytest.mark.parametrize(("case", "command"), PARAMS)
def test_bad_ledger_is_refused(
    world: World, case: LedgerCase, command: str, tmp_path: Path
) -> None:
    folder = tmp_path / "bridge"
    config = world.sandbox.write_config(folder)
    home = folder
    if case.read_only_folder:
        home = folder / "ro"
        home.mkdir()
        (folder / "bridge.db").rename(home / "bridge.db")
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace("sqlite:///bridge.db", "sqlite:///ro/bridge.db"))
        home.chmod(0o555)
    case.make(home / "bridge.db")
    # hashed before the lock is taken and after it is let go: reading the file here
    # would close a descriptor on it, and with it this process's POSIX locks
    before = file_hashes(home)
    holder = None
    if case.locked:
        holder = sqlite3.connect(home / "bridge.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
    try:
        world.reset_counters()
        outcome = run_bridge(config, *COMMANDS[command], cwd=folder, timeout=60)
    finally:
        if holder is not None:
            holder.execute("ROLLBACK")
            holder.close()
        home.chmod(0o755)
    after = file_hashes(home)
    verdict = Verdict(outcome, Expect(code=2, words=case.words))
    verdict.exit_code()
    verdict.message()
    verdict.no_writes(world.sandbox)
    verdict.same_files(before, after)
    if (folder / "report.html").exists():
        verdict.add("files", "a report was written from a ledger that cannot be believed")
    verdict.conclude(f"ledger files before: {before}")
