"""The report as JSON Lines: one JSON object per transition, one per line.

JSON Lines rather than one big array because it streams (a million rows never sit in
memory, here or in the SIEM that reads them) and every line validates on its own against
bridge/data/report-record.schema.json.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from bridge.core.model import Sides
from bridge.report.model import ReportRecord
from bridge.report.writer import Writer

__all__ = ["write_json_lines"]


def write_json_lines(out: Writer, records: Iterable[ReportRecord], sides: Sides) -> int:
    count = 0
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for record in records:
        out.write(dumps(record.to_dict(sides)))
        out.write("\n")
        count += 1
    return count
