"""Write-behind: a ledger write on a thread of its own while the run reads on.

On a server ledger a first sync's run waited for each page's batch of observations while
the server recorded it, and the server waited while the run looked up and built the next
page: half the wall time each (issue 18). A `WriteBehind` takes one write at a time
(`submit`) and runs it on its own thread and connection, so that the next page is read
meanwhile. What stays as it was:

* **Order.** One write is in flight at most: the next `submit` (and `settle`) waits for it,
  hands its result to its caller, or raises its error. Each write is its own transaction,
  as before; a kill loses at most the one in flight, with the cursor it carried.
* **What reads see.** Every other use of the ledger's engine, from any other thread,
  waits for the write in flight before it gets a connection (a pool `checkout` hook): no
  read can see the ledger as it was before a write that was handed over. The one
  exception is a read its caller names as untouched by that write (`beside`): the next
  page's lookup of links the write does not hold.

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
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine, event

__all__ = ["WRITER_THREAD", "WriteBehind"]

T = TypeVar("T")
#: what a caller says of a write it hands over (`WriteBehind.label`)
L = TypeVar("L")

#: the name of the thread writes run on (profilers and benchmarks tell it apart by it)
WRITER_THREAD = "bridge-ledger-write"
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


class WriteBehind(Generic[L]):
    """One write at a time behind the caller, on `engine`'s own connections."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._executor: ThreadPoolExecutor | None = None
        self._in_flight: _InFlight[Any, L] | None = None
        #: threads whose connections need not wait for the write in flight
        self._free = threading.local()
        event.listen(engine, "checkout", self._before_checkout)

    @property
    def label(self) -> L | None:
        """What the caller said of the write in flight (None: none in flight)."""
        in_flight = self._in_flight
        return None if in_flight is None else in_flight.label

    def submit(self, write: Callable[[], T], done: Callable[[T], None], label: L) -> None:
        """Run `write` behind the caller (after the write before it is settled); `done`
        gets its result at the next `settle`. `label`: what the caller may ask of it
        meanwhile (`label`), to tell which reads it cannot touch."""
        self.settle()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=WRITER_THREAD)
            _SWITCH.take()
        # the caller's context (its log bindings) goes with the write
        context = contextvars.copy_context()
        future = self._executor.submit(context.run, self._write, write)
        self._in_flight = _InFlight(future, done, label)

    def _write(self, write: Callable[[], T]) -> T:
        self._free.on = True  # the writer's own connection waits for nothing
        return write()

    def settle(self) -> None:
        """Wait for the write in flight: its result goes to its `done`, its error is
        raised here. Interrupted while waiting (Ctrl-C), the write stays in flight: the
        run's last ledger writes still wait for it."""
        in_flight = self._in_flight
        if in_flight is None:
            return
        try:
            result = in_flight.future.result()
        finally:
            if in_flight.future.done():
                self._in_flight = None
        in_flight.done(result)

    @contextmanager
    def beside(self) -> Iterator[None]:
        """This thread's ledger reads inside the block go on beside the write in flight:
        the caller knows they read nothing it writes."""
        self._free.on = True
        try:
            yield
        finally:
            self._free.on = False

    def close(self) -> None:
        """Settle what is in flight (its error raised) and end the thread."""
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
        the write in flight to end (not settled: its result is still its caller's)."""
        in_flight = self._in_flight
        if in_flight is not None and not getattr(self._free, "on", False):
            wait_for([in_flight.future])
