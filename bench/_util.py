"""Small helpers shared by the benchmarks: timing a child process and printing tables."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from collections.abc import Sequence


def run_child(args: Sequence[str], **kwargs: object) -> tuple[float, float, str]:
    """Run a command; return (wall seconds, peak RSS of the child in MB, stdout)."""
    started = time.perf_counter()
    completed = subprocess.run(
        list(args),
        capture_output=True,
        text=True,
        check=True,
        **kwargs,  # type: ignore[call-overload]
    )
    elapsed = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, peak_kb / 1024, completed.stdout


def peak_rss_mb() -> float:
    """Peak RSS of this process so far, in MB (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def python() -> str:
    return sys.executable
