"""Progress bars on a terminal: the command line's `ProgressSink` (`bridge/progress.py`).

A bar per phase, with counts, rate and time left (when the phase's total is known), drawn
on stderr by `rich` while the command runs (`bridge/cli/progress_bars.py`); nothing at all
when stderr is not a terminal (cron, systemd, a pipe, a test), so logs and output stay
clean, and rich is then not even imported. `BRIDGE_PROGRESS=always` draws them anyway (a
terminal that does not say it is one; the tests), `never` never does.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from bridge.progress import NO_PROGRESS, ProgressSink, reporting

__all__ = ["ENV_PROGRESS", "terminal_progress"]

#: `auto` (bars only on a terminal), `always`, `never`
ENV_PROGRESS = "BRIDGE_PROGRESS"
_MODES = ("auto", "always", "never")
#: the variables with which rich may take a stream that is no tty for a terminal
_RICH_TERMINAL_ENV = ("FORCE_COLOR", "TTY_COMPATIBLE")


def _mode() -> str:
    mode = os.environ.get(ENV_PROGRESS, "auto").strip().lower()
    return mode if mode in _MODES else "auto"


def _surely_no_terminal() -> bool:
    """What rich would answer without asking it (and importing it): stderr is no tty and
    no variable says otherwise. Anything else is rich's to decide."""
    if any(name in os.environ for name in _RICH_TERMINAL_ENV):
        return False
    try:
        return not sys.stderr.isatty()
    except (AttributeError, ValueError):  # no stream, or a closed one
        return True


@contextmanager
def terminal_progress() -> Iterator[ProgressSink]:
    """Progress bars on stderr for the block when it is a terminal (or `BRIDGE_PROGRESS`
    says `always`); the core's progress goes to them meanwhile."""
    mode = _mode()
    if mode == "never" or (mode == "auto" and _surely_no_terminal()):
        with reporting(NO_PROGRESS) as sink:
            yield sink
        return
    from rich.console import Console

    from bridge.cli.progress_bars import TerminalProgress

    console = Console(stderr=True, force_terminal=True if mode == "always" else None)
    if not console.is_terminal:
        with reporting(NO_PROGRESS) as sink:
            yield sink
        return
    with TerminalProgress(console) as bars, reporting(bars) as sink:
        yield sink
