"""The HTML report in a real browser (headless Chromium): at 1400 px and at a phone's
420 px nothing scrolls sideways and every column is there; printed (or saved as PDF) the
page is landscape and keeps every column, the purge verification included.

Skipped only where Chromium is not installed (CI installs it: .ci/run); the PDF's words are
read with pdftotext (poppler-utils, installed with it).
"""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.report import Period, ReportMeta, RowFilter, write_report
from bridge.report.render_html import DETAIL_HEADERS, STORY_HEADERS
from tests.report.browser import CHROMIUM, PDFTOTEXT, pdf_words, print_pdf, probe
from tests.report.conftest import Synced

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"
)

EVERYTHING = Period(datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
PAGES = [("report", DETAIL_HEADERS), ("story", STORY_HEADERS)]
#: where screenshots and PDFs are kept for a person to look at (else the test's tmp folder)
KEEP = os.environ.get("BRIDGE_REPORT_ARTIFACTS")


def _folder(tmp_path: Path) -> Path:
    if KEEP:
        folder = Path(KEEP)
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path


def _write(synced: Synced, folder: Path, name: str, **meta: Any) -> Path:
    out = io.StringIO()
    report = ReportMeta(EVERYTHING, datetime(2026, 4, 1, tzinfo=UTC), "ledger.db", "test", **meta)
    write_report(synced.ledger, report, "html", out)
    path = folder / name
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def pages(synced: Synced, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The audit report and one ticket's story, written from real syncs."""
    folder = _folder(tmp_path_factory.mktemp("browser"))
    so_id, _ = synced.pairs[1]
    with synced.ledger.audit_view() as view:
        ((link_id, _, _),) = [hit for hit in view.links_of_ticket(so_id) if hit[1] == so_id]
    return {
        "report": _write(synced, folder, "report.html"),
        "story": _write(synced, folder, "story.html", filters=RowFilter(link_id=link_id)),
    }


def _columns(found: dict[str, Any], headers: tuple[str, ...]) -> dict[str, Any]:
    (table,) = [t for t in found["tables"] if tuple(t["heads"]) == headers]
    return table


def _fits(found: dict[str, Any], width: int) -> None:
    assert found["innerWidth"] == width  # the page really was laid out at that width
    assert found["scrollWidth"] <= found["clientWidth"], "the page scrolls sideways"
    for table in found["tables"]:
        assert table["right"] <= found["clientWidth"] + 0.5
        for cell in table["cells"]:
            assert cell["display"] != "none"
            assert cell["width"] > 0
            assert cell["left"] >= -0.5
            assert cell["right"] <= found["clientWidth"] + 0.5, cell


@pytest.mark.parametrize(("page", "headers"), PAGES)
def test_at_1400_px_nothing_scrolls_sideways_and_every_column_shows(
    pages: dict[str, Path], page: str, headers: tuple[str, ...]
) -> None:
    shot = pages[page].with_name(f"{page}-1400.png")
    found = probe(pages[page], 1400, shot)
    assert shot.stat().st_size > 0
    _fits(found, 1400)
    table = _columns(found, headers)
    assert table["headShown"]
    assert [cell["label"] for cell in table["cells"]] == list(headers)


@pytest.mark.parametrize(("page", "headers"), PAGES)
def test_at_420_px_rows_become_labelled_cards_that_fit(
    pages: dict[str, Path], page: str, headers: tuple[str, ...]
) -> None:
    shot = pages[page].with_name(f"{page}-420.png")
    found = probe(pages[page], 420, shot)
    assert shot.stat().st_size > 0
    _fits(found, 420)
    table = _columns(found, headers)
    assert not table["headShown"]  # the header row gives way to a label in every cell
    assert [cell["before"] for cell in table["cells"]] == [f'"{h}"' for h in headers]
    # a card: each cell takes the width of the card, one above the other
    lefts = {round(cell["left"]) for cell in table["cells"]}
    assert len(lefts) == 1


@pytest.mark.skipif(PDFTOTEXT is None, reason="pdftotext is not installed (poppler-utils)")
def test_printed_it_is_landscape_and_keeps_every_column(pages: dict[str, Path]) -> None:
    pdf = pages["report"].with_name("report.pdf")
    print_pdf(pages["report"], pdf)
    words = pdf_words(pdf)
    width, height = words.pages[0]
    assert width > height  # A4 landscape
    assert all(x_max <= width for _, _, _, x_max in words.words), "text beyond the page"
    text = words.text()
    for header in DETAIL_HEADERS:
        for word in header.split():
            assert word in text, header
    # the last columns' values are printed too: a verified purge and its run
    assert "verified_gone" in text
    assert "Legend" in text
    assert "Integrity" in text
