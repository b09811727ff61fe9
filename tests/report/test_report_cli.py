"""`bridge report` through click: defaults, formats and every kind of bad input."""

from __future__ import annotations

import csv
import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.cli.exitcodes import ExitCode
from bridge.config import load_config
from bridge.ledger import Ledger
from bridge.ledger.tables import set_clock
from bridge.vendors.registry import SIDES
from tests.report.conftest import at, run

cli = main


@pytest.fixture(autouse=True)
def _clock() -> object:
    """'Today' is two days after the synthetic history."""
    set_clock(lambda: at(2 * 1440))
    yield
    set_clock(None)


def test_default_is_html_named_by_the_period_in_the_current_folder(
    filled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(filled)
    assert code == 0, err
    name = "bridge-report-2026-05-04-2026-05-06.html"
    assert out.strip() == name
    written = tmp_path / name
    assert written.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert "9 transitions" in err
    assert not list(tmp_path.glob(".*.part"))


def test_csv_and_json_to_a_chosen_path(filled: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    code, out, _ = run(
        filled,
        "--since",
        "2026-05-04",
        "--until",
        "2026-05-04",
        "--format",
        "csv",
        "--output",
        str(target),
    )
    assert code == 0
    assert out.strip() == str(target)
    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    assert [int(r["event_id"]) for r in rows] == [1, 3, 4, 6, 7, 8, 9, 10, 13]
    code, out, _ = run(filled, "--format", "json", "-o", "-")
    assert code == 0
    assert [json.loads(line)["event_id"] for line in out.splitlines()] == [
        1,
        3,
        4,
        6,
        7,
        8,
        9,
        10,
        13,
    ]


def test_markdown(filled: Path, tmp_path: Path) -> None:
    target = tmp_path / "r.md"
    code, _, _ = run(filled, "--format", "md", "-o", str(target), "--detail-rows", "2")
    assert code == 0
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# bridge audit report 2026-05-04 to 2026-05-06")
    assert "First 2 of 9 rows" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2026-02-30"], "not a date"),
        (["--until", "yesterday"], "not a date"),
        (["--since", "2026-05-05", "--until", "2026-05-04"], "--until is before --since"),
        (["--since", "2026-06-01"], "before it starts"),
        (["--format", "pdf"], "pdf"),
    ],
)
def test_bad_input_is_a_usage_error(filled: Path, args: list[str], message: str) -> None:
    code, out, err = run(filled, *args)
    assert code == ExitCode.USAGE
    assert message in err
    assert out == ""


def test_an_unwritable_output_path_is_an_error_and_leaves_nothing(
    filled: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, _, err = run(filled, "-o", str(blocker / "report.html"))
    assert code == ExitCode.USAGE
    assert f"cannot write {blocker / 'report.html'}" in err
    code, _, err = run(filled, "-o", str(tmp_path / "missing" / "report.html"))
    assert code == ExitCode.USAGE
    assert "cannot write" in err
    assert not (tmp_path / "missing").exists()
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".part")]


def test_an_empty_ledger_gives_an_empty_valid_report_and_says_so(
    home: Path, tmp_path: Path
) -> None:
    target = tmp_path / "empty.json"
    code, _, err = run(home, "--format", "json", "-o", str(target))
    assert code == 0
    assert "no events yet" in err
    assert target.read_text() == ""
    code, _, _ = run(home, "-o", str(tmp_path / "empty.html"))
    assert code == 0
    assert "No deletion, restore or purge" in (tmp_path / "empty.html").read_text()


# SQLite only: it is about the ledger file the config names being gone
def test_a_missing_ledger_is_an_error(tmp_path: Path) -> None:
    home = tmp_path / "b"
    CliRunner().invoke(cli, ["init", "--dir", str(home)])
    (home / "bridge.db").unlink()
    code, _, err = run(home)
    assert code == ExitCode.USAGE
    assert "does not exist" in err


def test_an_id_linked_on_both_sides_must_be_named(filled: Path) -> None:
    """Synthetic links: 101↔201 … 106↔206; a seventh pairs SuperOffice 201 with Zendesk 301,
    so 201 is two links' ticket."""
    with Ledger.open(load_config(filled / "bridge.toml").ledger_url, sides=SIDES) as ledger:
        ledger.add_link(201, 301, origin="csv")
    code, _, err = run(filled, "--ticket", "201")
    assert code == ExitCode.USAGE
    assert "--ticket superoffice:201 or --ticket zendesk:201" in err
    code, out, err = run(filled, "--ticket", "zendesk:201", "--format", "json", "-o", "-")
    assert code == 0, err
    assert [json.loads(line)["event_id"] for line in out.splitlines()] == [1, 3]
