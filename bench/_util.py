"""Small helpers shared by the benchmarks: timing a child process, memory, printing tables."""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


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


#: runs argv[1:] as its own child (stderr discarded) and writes that child's exit code, CPU
#: seconds and peak RSS (kB) to its stderr as JSON. On Linux a child's peak RSS starts at its
#: parent's resident size (fork copies the counters, exec keeps the old high-water mark): a
#: command started straight from a benchmark that holds a tenant's ids would report the
#: benchmark's memory as its own. Started from this small process, it reports its own.
_MEASURE = """
import json, os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
sys.stderr.write(json.dumps({
    "exit_code": os.waitstatus_to_exitcode(status),
    "wall": time.perf_counter() - started,
    "cpu": usage.ru_utime + usage.ru_stime,
    "peak_kb": usage.ru_maxrss,
}))
"""


@dataclass(frozen=True)
class ChildUsage:
    """What one measured command used: its own CPU and peak RSS, not its starter's."""

    exit_code: int
    wall: float
    cpu: float
    peak_mb: float


def measure_child(
    args: Sequence[str],
    *,
    stdout: IO[Any] | int | None = None,
    env: Mapping[str, str] | None = None,
) -> ChildUsage:
    """Run a command (its stdout to `stdout`; `env`: its environment, default this one's)
    and measure it as its own process tree."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *args], stdout=stdout, stderr=subprocess.PIPE, env=env
    )
    usage = json.loads(done.stderr.decode("utf-8", "replace").strip().splitlines()[-1])
    return ChildUsage(usage["exit_code"], usage["wall"], usage["cpu"], usage["peak_kb"] / 1024)


def peak_rss_mb() -> float:
    """Peak RSS of this process so far, in MB (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _status_mb(field: str) -> float | None:
    """A `VmRSS`/`VmHWM` line of /proc/self/status in MB (None off Linux)."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def rss_mb() -> float:
    """This process's resident memory now, in MB (the peak so far where /proc is absent)."""
    return _status_mb("VmRSS") or peak_rss_mb()


def reset_peak_rss() -> None:
    """Start a new peak-RSS window (Linux: `clear_refs` 5 resets VmHWM), so that one phase's
    peak is not hidden by an earlier one's; a no-op elsewhere."""
    with contextlib.suppress(OSError):
        _CLEAR_REFS.write_text("5")


def window_peak_rss_mb() -> float:
    """Peak RSS since the last `reset_peak_rss`, in MB (the whole life's peak elsewhere)."""
    return _status_mb("VmHWM") or peak_rss_mb()


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process `pid` and of its children, living or reaped
    (Linux /proc; 0.0 elsewhere): a database server's cost, which its client's own CPU
    does not show."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    try:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                # after the last ")" (the command name may hold spaces): state, ppid, ...
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if stat.parent.name == str(pid):  # its own, and its reaped children's
                    total += sum(int(f) for f in fields[11:15])
                elif fields[1] == str(pid):  # a living child: its own
                    total += int(fields[11]) + int(fields[12])
    except OSError:
        return 0.0
    return total / tick


def exponent(small: tuple[float, float], large: tuple[float, float]) -> float | None:
    """The growth exponent k in cost ∝ size^k between two (size, cost) points."""
    (n1, c1), (n2, c2) = small, large
    if n1 <= 0 or n2 <= n1 or c1 <= 0 or c2 <= 0:
        return None
    return math.log(c2 / c1) / math.log(n2 / n1)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def python() -> str:
    return sys.executable
