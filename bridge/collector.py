"""The interpreter's garbage collector as a bridge process runs it.

Set once by the command line when it starts (`bridge/cli/__init__.py`), and by a benchmark
that runs a command's work in its own process, so that both measure what a user's process
does.
"""

from __future__ import annotations

import atexit
import gc

__all__ = ["tune_collector"]


def tune_collector() -> None:
    """Collect young objects every 10,000 allocations, and nothing at exit.

    A run makes millions of short-lived objects (rows, views, observations, the tuples a
    batch is staged from) and no cycles worth collecting early; the collector's default (a
    young collection every 700 allocations, a full one over every object loaded every 100
    of those) took 0.5-0.6 s of a 100,000-link first sync, eight full collections of 40 ms
    among them. Every 10,000 allocations it takes 0.05 s; the garbage cycles it leaves a
    little longer are a few megabytes at most (docs/performance.md, issue 16).

    A process ends with the interpreter tearing its modules down, running full collections
    over every object SQLAlchemy, SQLModel, pydantic and bridge made, several times over:
    about 0.2-0.3 s of CPU, most of an idle `sync` after its imports, spent on memory the
    process hands back anyway. Objects frozen at exit are left out of those collections;
    everything else at exit still happens (atexit handlers, logging's and stdout's flush,
    temporary folders' removal); the ledger and its connections are closed by the commands
    themselves, before this. Python never promised to collect cycles at exit.
    """
    gc.set_threshold(10_000, 10, 10)
    atexit.register(gc.freeze)
