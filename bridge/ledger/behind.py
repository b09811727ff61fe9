"""Write-behind: a ledger write on a thread of its own while the run reads on.

On a server ledger a first sync's run waited for each page's batch of observations while
the server recorded it, and the server waited while the run looked up and built the next
page: half the wall time each (issue 18). A `WriteBehind` takes one write at a time
(`submit`) and runs it on its own thread and connection, so that the next page is read
meanwhile. What stays as it was:

* **Order.** Writes run one after the other, in the order handed over, at most `DEPTH` of
  them waiting or running: a `submit` beyond that waits for the oldest, hands its result
  to its caller, or raises its error (`settle` does so for all). Each write is its own
  transaction, as before; a kill loses at most those in flight, each with the cursor it
  carried, the earlier ones committed first. A write that fails stops the ones handed
  over after it: they never run (their pages are read again, as any page a failed run
  did not record), and the caller hears of the failure once.
* **What reads see.** Every other use of the ledger's engine, from any other thread,
  waits for the writes in flight before it gets a connection (a pool `checkout` hook): no
  read can see the ledger as it was before a write that was handed over. The one
  exception is a read its caller names as untouched by those writes (`beside`): the next
  page's lookup of links they do not hold.

One write in flight left each side waiting for the other half the time: the run for the
writer while it built the next page, the writer for the run while a page came slowly; two
let each go on through the other's slow turns (docs/performance.md, issue 18).

Errors reach the caller one step late (at the next `submit` or `settle`), never lost:
`close` raises what a write left unreported.

While a write-behind is open, the interpreter hands the GIL between threads every
`SWITCH_INTERVAL` seconds instead of Python's 5 ms: each of a write's round trips ends
with its thread waiting for the GIL, which the run's thread, building the next page,
held for up to the whole interval. On a 100,000-link first sync that wait was about a
fifth of the writer's time (docs/performance.md).
"""

from __future__ import annotations

import contextvars
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine, event

__all__ = ["DEPTH", "WRITER_THREAD", "WriteBehind"]

T = TypeVar("T")
#: what a caller says of a write it hands over (`WriteBehind.label`)
L = TypeVar("L")

#: the name of the thread writes run on (profilers and benchmarks tell it apart by it)
WRITER_THREAD = "bridge-ledger-write"
#: how many writes may be in flight (handed over, not yet settled) at once
DEPTH = 2
#: the GIL's switch interval while a write-behind is open (seconds; Python's default: 0.005)
SWITCH_INTERVAL = 0.0002


class _SwitchInterval:
    """The shorter switch interval, held while any write-behind of the process is open
    (several runs' in a worker), the interpreter's own put back after the last."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._before = sys.getswitchinterval()

    def take(self) -> None:
        with self._lock:
            if self._users == 0:
                self._before = sys.getswitchinterval()
                sys.setswitchinterval(min(self._before, SWITCH_INTERVAL))
            self._users += 1

    def give_back(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                sys.setswitchinterval(self._before)


_SWITCH = _SwitchInterval()


class _InFlight(Generic[T, L]):
    """A write handed over, and what to do with its result."""

    def __init__(self, future: Future[T], done: Callable[[T], None], label: L) -> None:
        self.future = future
        self.done = done
        self.label = label


class _StoppedError(Exception):
    """A write not run: one handed over before it failed."""


class WriteBehind(Generic[L]):
    """Writes behind the caller, in order, at most `depth` at a time, on `engine`'s own
    connections."""

    def __init__(self, engine: Engine, *, depth: int = DEPTH) -> None:
        self._engine = engine
        self._depth = max(1, depth)
        self._executor: ThreadPoolExecutor | None = None
        self._in_flight: deque[_InFlight[Any, L]] = deque()
        #: set on the writer's thread when a write fails: the writes after it do not run
        self._failed = False
        #: threads whose connections need not wait for the writes in flight
        self._free = threading.local()
        event.listen(engine, "checkout", self._before_checkout)

    @property
    def labels(self) -> tuple[L, ...]:
        """What the caller said of each write in flight, oldest first."""
        return tuple(in_flight.label for in_flight in list(self._in_flight))

    def submit(self, write: Callable[[], T], done: Callable[[T], None], label: L) -> None:
        """Run `write` behind the caller, after those handed over before it (waiting for
        the oldest when `depth` are in flight); `done` gets its result when it is settled.
        `label`: what the caller may ask of it meanwhile (`labels`), to tell which reads
        it cannot touch."""
        self._settle(keep=self._depth - 1)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=WRITER_THREAD)
            _SWITCH.take()
        # the caller's context (its log bindings) goes with the write
        context = contextvars.copy_context()
        future = self._executor.submit(context.run, self._write, write)
        self._in_flight.append(_InFlight(future, done, label))

    def _write(self, write: Callable[[], T]) -> T:
        if self._failed:
            raise _StoppedError
        self._free.on = True  # the writer's own connection waits for nothing
        try:
            return write()
        except BaseException:
            self._failed = True
            raise

    def settle(self) -> None:
        """Wait for every write in flight: each result goes to its `done`, in order; an
        error is raised here. Interrupted while waiting (Ctrl-C), the writes stay in
        flight: the run's last ledger writes still wait for them."""
        self._settle(keep=0)

    def _settle(self, *, keep: int) -> None:
        """Settle the oldest writes until `keep` are left in flight."""
        while len(self._in_flight) > keep:
            oldest = self._in_flight[0]
            try:
                result = oldest.future.result()
            except BaseException:
                if oldest.future.done():
                    self._drop_stopped()
                raise
            self._in_flight.popleft()
            oldest.done(result)

    def _drop_stopped(self) -> None:
        """The oldest write failed: it and the writes after it (which the failure stopped)
        leave the queue, and the next write handed over runs again."""
        futures = [in_flight.future for in_flight in self._in_flight]
        wait_for(futures)  # those after it end at once, not run
        self._in_flight.clear()
        self._failed = False

    @contextmanager
    def beside(self) -> Iterator[None]:
        """This thread's ledger reads inside the block go on beside the writes in flight:
        the caller knows they read nothing those write."""
        self._free.on = True
        try:
            yield
        finally:
            self._free.on = False

    def close(self) -> None:
        """Settle what is in flight (an error raised) and end the thread."""
        try:
            self.settle()
        finally:
            event.remove(self._engine, "checkout", self._before_checkout)
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
                _SWITCH.give_back()

    def _before_checkout(self, *_args: object) -> None:
        """A connection is about to be used: unless its thread is free to, it waits for
        the writes in flight to end (not settled: their results are still their caller's)."""
        if self._in_flight and not getattr(self._free, "on", False):
            wait_for([in_flight.future for in_flight in list(self._in_flight)])
