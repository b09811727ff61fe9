"""The report as CSV: one row per transition, the documented field names as the header.

Streams: rows are written as they come. Empty cells are nulls; times are RFC 3339 UTC.
`parse_row` turns a read-back row into the same values as `ReportRecord.to_dict`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from typing import Any

from bridge.core.model import Sides
from bridge.report.model import ReportRecord, fields, id_fields
from bridge.report.writer import Writer

__all__ = ["INTEGER_FIELDS", "parse_row", "write_csv"]

#: the integer fields besides the two ticket ids (`id_fields`)
INTEGER_FIELDS = frozenset(
    {"event_id", "link_id", "ticket_id", "actor_id", "run_id", "operation_id", "source_event_id"}
)
_FLOAT_FIELDS = frozenset({"latency_seconds"})


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # shortest exact text: reads back to the same float
    return value


def write_csv(out: Writer, records: Iterable[ReportRecord], sides: Sides) -> int:
    """Write the header and every record; return how many records."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fields(sides))
    count = 0
    for record in records:
        writer.writerow([_cell(value) for value in record.values()])
        count += 1
    return count


def parse_row(row: Mapping[str, str], sides: Sides) -> dict[str, Any]:
    """A `csv.DictReader` row back into typed values (None for empty cells)."""
    parsed: dict[str, Any] = {}
    integers = INTEGER_FIELDS.union(id_fields(sides))
    for name in fields(sides):
        text = row.get(name, "")
        if text == "":
            parsed[name] = None
        elif name in integers:
            parsed[name] = int(text)
        elif name in _FLOAT_FIELDS:
            parsed[name] = float(text)
        else:
            parsed[name] = text
    return parsed
