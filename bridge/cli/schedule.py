"""What `bridge sync --every` decides between runs, apart from any I/O: how long to wait
after each exit code, and the heartbeat a supervisor reads."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bridge.errors import ExitCode

__all__ = ["BACKOFF_CAP", "backs_off", "next_wait", "write_heartbeat"]

#: the longest wait while a vendor stays down: an outage noticed late is still noticed
#: within the hour, and a vendor that is back is not hammered meanwhile
BACKOFF_CAP = timedelta(hours=1)
#: the exit codes after which the loop waits longer each time: the vendor is down or
#: refuses us (5), or bridge itself failed (6); anything else keeps the interval
_BACKING_OFF = frozenset({ExitCode.VENDOR, ExitCode.INTERNAL})


def backs_off(code: ExitCode) -> bool:
    """Whether this run's exit code makes the loop wait longer than its interval."""
    return code in _BACKING_OFF


def next_wait(
    interval: timedelta,
    failures_in_a_row: int,
    uniform: Callable[[float, float], float] = random.uniform,
) -> timedelta:
    """The interval, or after `failures_in_a_row` runs that backed off, a wait that doubles
    each time (capped at `max(interval, BACKOFF_CAP)`), drawn at random between half and
    all of it: several loops against one vendor do not come back at the same moment."""
    if failures_in_a_row <= 0:
        return interval
    cap = max(interval, BACKOFF_CAP)
    ceiling = min(interval * 2**failures_in_a_row, cap)
    return max(interval, timedelta(seconds=uniform(0.5, 1.0) * ceiling.total_seconds()))


def write_heartbeat(path: Path, facts: dict[str, Any], now: datetime) -> None:
    """Replace `path` atomically with one JSON object: when, what the run did, when the
    next is due. A liveness probe checks its age (`find FILE -mmin -15`) or reads it."""
    body = json.dumps({"at": now.isoformat(timespec="seconds"), **facts}, sort_keys=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(body + "\n", encoding="utf-8")
    os.replace(temporary, path)
