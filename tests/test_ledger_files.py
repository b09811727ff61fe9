"""The ledger file, checked before it is believed: each unusable file gets one line naming it
and what to do, before any vendor call, and is left exactly as it was."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bridge.ledger import LATEST_VERSION, Ledger
from bridge.ledger.files import LedgerFileError
from bridge.vendors.registry import SIDES
from tests.sandbox_world import SandboxWorld, frozen_sandbox


def _digest(path: Path) -> str | None:
    if not path.exists() or path.is_dir():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _zero(path: Path) -> None:
    path.write_bytes(b"")


def _text(path: Path) -> None:
    path.write_text("superoffice_id,zendesk_id\n1,2\n", encoding="utf-8")


def _other_sqlite(path: Path) -> None:
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE notes (body TEXT)")
    connection.commit()
    connection.close()


def _corrupt(path: Path) -> None:
    Ledger.open(f"sqlite:///{path}", sides=SIDES).close()
    data = bytearray(path.read_bytes())
    for offset in range(100, len(data), 997):  # scribble over every page but the header
        data[offset : offset + 40] = b"\xff" * 40
    path.write_bytes(bytes(data))


def _newer(path: Path) -> None:
    Ledger.open(f"sqlite:///{path}", sides=SIDES).close()
    connection = sqlite3.connect(path)
    connection.execute(
        "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(LATEST_VERSION + 1),)
    )
    connection.commit()
    connection.close()  # the last connection: its WAL is checkpointed into the file


def _read_only(path: Path) -> None:
    Ledger.open(f"sqlite:///{path}", sides=SIDES).close()
    path.chmod(0o400)


def _folder(path: Path) -> None:
    path.mkdir()


CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "zero bytes": (_zero, "is empty (0 bytes)"),
    "a text file": (_text, "is not a SQLite database"),
    "another program's database": (_other_sqlite, "not a bridge ledger"),
    "corrupt": (_corrupt, "is corrupt"),
    "newer version": (_newer, "newer than this bridge"),
    "read-only": (_read_only, "is read-only"),
    "a folder": (_folder, "is a folder"),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("create", [False, True])
def test_an_unusable_ledger_file_is_refused_and_left_as_it_was(
    tmp_path: Path, case: str, create: bool
) -> None:
    path = tmp_path / "bridge.db"
    make, message = CASES[case]
    make(path)
    before = _digest(path)
    with pytest.raises(LedgerFileError if case != "newer version" else Exception) as caught:
        Ledger.open(f"sqlite:///{path}", create=create, sides=SIDES)
    assert message in str(caught.value)
    if case != "newer version":
        assert str(path) in str(caught.value)
    assert _digest(path) == before
    assert not Path(f"{path}-wal").exists() or case == "newer version"


def test_a_missing_ledger_is_created_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "bridge.db"
    with pytest.raises(LedgerFileError, match="does not exist"):
        Ledger.open(f"sqlite:///{path}", create=False, sides=SIDES)
    assert not path.exists()
    Ledger.open(f"sqlite:///{path}", create=True, sides=SIDES).close()
    assert path.exists()


def test_a_ledger_in_a_read_only_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    Ledger.open(f"sqlite:///{folder / 'bridge.db'}", sides=SIDES).close()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(LedgerFileError, match="read-only folder"):
            Ledger.open(f"sqlite:///{folder / 'bridge.db'}", create=False, sides=SIDES)
        with pytest.raises(LedgerFileError, match=r"folder .* is read-only"):
            Ledger.open(f"sqlite:///{folder / 'new.db'}", create=True, sides=SIDES)
    finally:
        folder.chmod(0o700)


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Path]:
    """A ledger another process holds a write transaction on."""
    path = tmp_path / "bridge.db"
    Ledger.open(f"sqlite:///{path}", sides=SIDES).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"c = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE'); print('held', flush=True); time.sleep(30)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    try:
        yield path
    finally:
        holder.kill()
        holder.wait()


def test_a_ledger_locked_by_another_process_is_refused(locked: Path) -> None:
    with pytest.raises(LedgerFileError, match="locked by another process"):
        Ledger.open(f"sqlite:///{locked}", create=False, sides=SIDES)


def test_a_second_open_in_the_same_process_keeps_the_first_seeing_other_writers(
    tmp_path: Path,
) -> None:
    # the checks must not cost the process its SQLite locks (a raw second connection did)
    path = tmp_path / "bridge.db"
    url = f"sqlite:///{path}"
    Ledger.open(url, sides=SIDES).close()
    first = Ledger.open(url, sides=SIDES)
    first.count_links()
    Ledger.open(url, sides=SIDES).close()
    writer = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})\n"
        "from bridge.ledger import Ledger\n"
        "from bridge.vendors.registry import SIDES\n"
        f"with Ledger.open({url!r}, create=False, sides=SIDES) as l:\n"
        "    l.add_link(1, 2, origin='csv')\n"
    )
    subprocess.run([sys.executable, "-c", writer], check=True)
    assert first.count_links() == 1
    first.close()


# --- through the command line: before any vendor call -------------------------------------

BAD = ["zero bytes", "a text file", "another program's database", "corrupt", "read-only"]


@pytest.mark.parametrize("case", BAD)
@pytest.mark.parametrize(
    "command",
    [
        ["sync"],
        ["status"],
        ["migrate", "--from", "zendesk", "--to", "superoffice", "--include-purges"],
    ],
)
def test_commands_refuse_a_bad_ledger_before_any_vendor_call(
    tmp_path: Path, case: str, command: list[str]
) -> None:
    with frozen_sandbox() as sandbox:
        world = SandboxWorld(sandbox, tmp_path / "bridge")
        world.close()
        path = tmp_path / "bridge" / "bridge.db"
        for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)
        CASES[case][0](path)
        before = _digest(path)
        world.reset_counters()
        done = threading.Event()
        result = subprocess.run(
            world.command(*command),
            env={k: v for k, v in os.environ.items() if k != "BRIDGE_CRASH_AT"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        done.set()
        assert result.returncode == 2, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert len(lines) == 1, result.stderr
        assert str(path) in lines[0]
        assert CASES[case][1] in lines[0]
        assert "Traceback" not in result.stderr
        assert _digest(path) == before
        assert world.routes("zendesk") == {}
        assert world.routes("superoffice") == {}
