"""Reading link files: `<side>_id` CSV (`superoffice_id,zendesk_id`), validated line by line.

Parsing is streamed so that a million-row file costs little memory; the ledger stages the
parsed rows and adds its own checks (duplicates, clashes with existing links) before
writing anything.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TextIO

from bridge import progress
from bridge.core.model import Side, id_column
from bridge.errors import BridgeError
from bridge.ledger import ImportReport, Ledger, LinkProblem, LinkRow
from bridge.values import parse_ticket_id
from bridge.vendors.registry import MAX_TICKET_ID, SIDES

__all__ = [
    "COLUMNS",
    "LinkFileError",
    "LinkFileReader",
    "id_column",
    "import_link_file",
    "named_ids",
]


def named_ids(tickets: Mapping[Side, int]) -> dict[str, int]:
    """A link's tickets by side (as the ledger gives them) under their `<side>_id` names."""
    return {id_column(side): ticket for side, ticket in tickets.items()}


#: a link file's columns, first side then second
COLUMNS = tuple(id_column(side) for side in SIDES)
#: what `surrogateescape` makes of bytes that are not UTF-8
_NOT_UTF8 = re.compile("[\udc80-\udcff]")


class LinkFileError(BridgeError, ValueError):
    """The file cannot be read as a link file at all (missing, unreadable, no header)."""


def _ticket_id(raw: str, side: Side, problems: list[LinkProblem], line: int) -> int | None:
    try:
        return parse_ticket_id(raw, side, MAX_TICKET_ID[side], what=id_column(side))
    except ValueError as exc:
        problems.append(LinkProblem(line, str(exc)))
        return None


class LinkFileReader:
    """Iterates the valid rows of a link file and collects the problems of the others."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.problems: list[LinkProblem] = []

    def __iter__(self) -> Iterator[LinkRow]:
        reader = csv.reader(self._stream)
        try:
            header = next(reader)
        except StopIteration:
            raise LinkFileError(
                f"the file is empty; expected a header {','.join(COLUMNS)}"
            ) from None
        except csv.Error as exc:
            raise LinkFileError(f"line 1: {exc}") from None
        if any(_NOT_UTF8.search(name) for name in header):
            raise LinkFileError("line 1: not UTF-8 text (save the file as UTF-8)")
        names = [name.strip().lstrip("\ufeff").lower() for name in header]
        missing = [column for column in COLUMNS if column not in names]
        if missing:
            raise LinkFileError(
                f"line 1: header lacks column {', '.join(missing)}; "
                f"expected {','.join(COLUMNS)} (found {','.join(names)[:80]})"
            )
        first_index, second_index = (names.index(id_column(side)) for side in SIDES)
        sink = progress.current()
        while True:
            started = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                self.problems.append(LinkProblem(reader.line_num, f"not valid CSV: {exc}"))
                continue
            line = reader.line_num
            if any("\n" in f or "\r" in f for f in fields):
                self.problems.append(
                    LinkProblem(started, "a quoted field is not closed on this line")
                )
                continue
            if any(_NOT_UTF8.search(f) for f in fields):
                self.problems.append(LinkProblem(line, "not UTF-8 text"))
                continue
            if not fields or all(not f.strip() for f in fields):
                continue  # blank lines carry nothing
            if len(fields) != len(names):
                # too few is unreadable; too many may be a shifted row (`1,001,52001`)
                self.problems.append(
                    LinkProblem(line, f"expected {len(names)} columns, found {len(fields)}")
                )
                continue
            first = _ticket_id(fields[first_index], SIDES.first, self.problems, line)
            second = _ticket_id(fields[second_index], SIDES.second, self.problems, line)
            if first is not None and second is not None:
                sink.advance("importing links")
                yield LinkRow(line, first, second)


def import_link_file(ledger: Ledger, path: Path, *, origin: str = "csv") -> ImportReport:
    """Import a link file all-or-nothing; the report lists every problem by line."""
    try:
        # undecodable bytes are kept as surrogates, so that each is named by its line
        stream = path.open(newline="", encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise LinkFileError(f"cannot read {path}: {exc.strerror}") from None
    with stream:
        reader = LinkFileReader(stream)
        try:
            return ledger.import_links(reader, origin=origin, parse_problems=reader.problems)
        except UnicodeDecodeError as exc:
            raise LinkFileError(f"{path} is not UTF-8 text (byte {exc.start})") from None
