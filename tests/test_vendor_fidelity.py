"""`docs/vendor-fidelity.md` and the `check --deep` probes stay in step: every row marked
`--deep` has a probe under its id, every probe has a row, and every assumed behaviour either
has a probe or says how (or why not) to check it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bridge.vendors.superoffice.probes import PROBES as SO_PROBES
from bridge.vendors.zendesk.probes import PROBES as ZD_PROBES

DOC = Path(__file__).parent.parent / "docs" / "vendor-fidelity.md"
STATUSES = {"recorded", "documented", "assumed"}


def _rows() -> list[dict[str, str]]:
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        # an escaped pipe (`\|`) is part of a cell
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        if len(cells) == 5 and re.fullmatch(r"(so|zd)\.[a-z0-9.-]+", cells[0]):
            rows.append(dict(zip(("id", "what", "status", "source", "check"), cells, strict=True)))
    return rows


def test_the_doc_lists_behaviours_of_both_vendors() -> None:
    ids = [row["id"] for row in _rows()]
    assert len(ids) == len(set(ids)), "duplicate ids"
    assert any(i.startswith("so.") for i in ids)
    assert any(i.startswith("zd.") for i in ids)


@pytest.mark.parametrize("row", _rows(), ids=lambda row: row["id"])
def test_each_row_says_how_we_know_and_cites_a_source(row: dict[str, str]) -> None:
    words = set(re.findall(r"[a-z]+", row["status"]))
    assert words & STATUSES, f"{row['id']}: status {row['status']!r}"
    assert row["source"], f"{row['id']}: no source"
    if "assumed" in words:
        check = row["check"]
        assert check.startswith("`--deep`") or re.match(r"(by hand|nothing to check)", check), (
            f"{row['id']} is assumed: it needs a probe or a way to check it"
        )


def test_probes_and_deep_rows_match() -> None:
    deep_rows = {row["id"] for row in _rows() if row["check"].startswith("`--deep`")}
    probes = {probe.id for probe in (*SO_PROBES, *ZD_PROBES)}
    assert deep_rows == probes
