"""Observe: read what each side shows of the linked tickets and record it.

The run reads each side's change stream from its cursor, the sides taking turns, each
whenever its rate limit lets it go on, so that one side's waits are the other's reading
time (a change export may allow only a few pages a minute). Then the links never read, and
the vanished-ticket sweep (`sweep.py`), are looked up in the background: per-ticket reads
that fill the waits of whatever the run does next, until it needs them. Links waiting on
them are in `RunState.deferred` and are decided once they are known (`decide_due`).
Everything read is recorded through `record.Recorder`.

Seams:

* **A webhook hint enters here.** `look_up(side, links)` queues a background lookup of
  given links: it is how links never read are observed, and how a hint (a vendor saying
  "these tickets changed") is: a targeted run (`RunOptions.hints`, `bridge serve`) looks
  up the linked tickets the webhooks named, in bulk, instead of `observe()`'s change
  streams, unread links and sweep, without touching the steps after it. It reads no
  change stream at all, not even to confirm (`read_changes` does nothing: confirm's
  lookups re-read the targets), so that a few tickets never cost a page of a stream
  that a vendor allows only a few of a minute; the scheduled sync reads the streams.
* **Waits are filled from here.** `Observer` is what apply does meanwhile
  (`jobs.Meanwhile`): while vendor jobs run, a full page of what they changed is read from
  the target's stream, and background lookups go on. A worker that only applies and
  confirms passes something that just sleeps instead. Confirm re-reads through
  `read_changes` and `look_up_now` (`confirm.Reader`).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence

import structlog

from bridge import progress
from bridge.core.batches import chunked
from bridge.core.contract import (
    AccountBusyError,
    Adapter,
    AdapterError,
    ChangePage,
    TicketView,
)
from bridge.core.model import Side
from bridge.ledger.sync import LinkIds
from bridge.run.record import Recorder
from bridge.run.state import RunContext
from bridge.run.sweep import Sweep, plan_sweep
from bridge.run.tasks import INSTANT, NEVER, ReadyIn, Scheduler, Task, now_ready

__all__ = ["Observer"]

log = structlog.get_logger("bridge.sync")


class Observer:
    """The observe step of the run of `ctx`; its reads also serve the steps after it."""

    def __init__(self, ctx: RunContext, record: Recorder) -> None:
        self._ctx = ctx
        self._record = record
        self._scheduler = Scheduler(ctx.sleep)
        #: each side's change stream, open between pages (see `_read_page`)
        self._streams: dict[Side, Generator[ChangePage, None, None]] = {}
        #: tickets our finished jobs changed that the side's stream has not shown yet
        self._unread: Counter[Side] = Counter()
        #: each side's cursor as the ledger holds it, or will once the pages handed to
        #: the recorder are written (both read at once when the run's streams open; a
        #: stream opened again starts there)
        self._cursors: dict[Side, str | None] = {}
        #: cursors of pages that held nothing to record, written with the run's end
        #: (`held_cursors`) rather than each in a transaction of its own
        self._held_cursors: dict[Side, str] = {}

    # --- the step ---------------------------------------------------------------------

    def observe(self) -> None:
        """Read each side's changes since its cursor, the sides in turns; then queue the
        lookups of links never read and the sweep, to go on in the background."""
        hints = self._ctx.options.hints
        if hints is not None:
            self._look_up_hinted(hints)
            return
        held = self._ctx.facts().cursors
        streams = []
        for side, adapter in self._ctx.reachable():
            self._cursors[side] = held.get(side)
            streams.append(Task(self._stream_steps(side, adapter)))
        self._scheduler.run(streams)
        self._record.settle()  # the last page recorded behind the reads

    def _look_up_hinted(self, hints: Mapping[Side, frozenset[int]]) -> None:
        """A targeted run: look up the linked tickets webhooks named, side by side, in the
        background (bulk lookups); a ticket no link holds is counted and left."""
        ctx = self._ctx
        for side, _adapter in ctx.reachable():
            tickets = hints.get(side, frozenset())
            if not tickets:
                continue
            links = ctx.ledger.links_for_tickets(side, tickets)
            ctx.state.counts["hints.unlinked"] += len(tickets) - len(links)
            ctx.state.counts[f"{side}.hinted"] += len(links)
            if links:
                self.look_up(side, sorted(links.values(), key=lambda link: link.link_id))

    def look_up(self, side: Side, links: Sequence[LinkIds]) -> None:
        """Look the links' tickets on `side` up in the background; until their batch is
        read they are deferred (not decided). The seam for a webhook hint."""
        adapter = self._ctx.adapters[side]
        self._ctx.state.deferred.update(link.link_id for link in links)
        self._scheduler.add_background(Task(self._lookup_steps(side, adapter, links)))

    @property
    def looking_up(self) -> bool:
        """Whether background lookups are still going on."""
        return self._scheduler.has_background

    def finish_background(self) -> bool:
        """Run what is left of the background lookups now; False when there was none (or
        the run is stopping: what is left is dropped, its links read next run)."""
        tasks = self._scheduler.take_background()
        if not tasks or self._ctx.state.interrupted:
            return False
        self._scheduler.run(tasks)
        return True

    # --- reads for the other steps ----------------------------------------------------

    def read_changes(self, side: Side) -> None:
        """Read `side`'s change stream up to now (or until it fails, or the run stops); a
        targeted run reads none (its confirming lookups follow)."""
        if self._ctx.options.targeted:
            return
        adapter = self._ctx.adapters[side]
        while not self._read_page(side, adapter) and not self._ctx.stop():
            pass

    def look_up_now(self, side: Side, links: Sequence[LinkIds]) -> set[int]:
        """Look the links' tickets up in bulk now and record them; the ticket ids whose
        state became known."""
        known: set[int] = set()
        adapter = self._ctx.adapters[side]
        for _ready in self._lookup_steps(side, adapter, links, known):
            pass
        return known

    def jobs_done(self, side: Side, tickets: int) -> None:
        """Vendor jobs ended that changed `tickets` tickets on `side`: the stream shows them
        next, and a full page of them is worth reading while other jobs run (not in a
        targeted run, which reads no stream)."""
        if not self._ctx.options.targeted:
            self._unread[side] += tickets

    def idle(self, seconds: float) -> None:
        """Wait `seconds`, working meanwhile: read a change stream whenever a full page of
        what our finished jobs changed is waiting and the stream's rate limit lets it
        through (the confirming re-reads then overlap the vendor's jobs instead of
        following them), and take background lookup steps. Links wait on those lookups,
        so they go on even when a step outlasts the wait: a poll may be a little late."""
        ctx = self._ctx
        deadline = ctx.clock() + seconds
        while (left := deadline - ctx.clock()) >= INSTANT:
            due = [
                (adapter.changes_ready_in(), side)
                for side, adapter in ctx.reachable()
                if self._unread[side] >= adapter.change_page_size
            ]
            read_in, side = min(due, key=lambda item: item[0], default=(NEVER, None))
            if read_in < INSTANT and side is not None:
                self._read_page(side, ctx.adapters[side])
                continue
            stepped, wait = self._scheduler.step_background()
            if stepped:
                continue
            ctx.sleep(min(left, wait, read_in))

    def step_background(self) -> bool:
        """Take one background lookup step; False when none is left to take."""
        stepped, _wait = self._scheduler.step_background()
        return stepped

    # --- steps ------------------------------------------------------------------------

    def close(self) -> None:
        """Close the change streams left open (the run ended midway, or stopped): a page
        one asked for ahead is waited for and left unread (no read outlives the run)."""
        for side in list(self._streams):
            self._close_stream(side)

    def _close_stream(self, side: Side) -> None:
        stream = self._streams.pop(side, None)
        if stream is not None:
            stream.close()

    def _stream_steps(self, side: Side, adapter: Adapter) -> Iterator[ReadyIn]:
        """Read the side's stream to its end, each next page asked for while this one is
        recorded (`read_ahead`: nothing is written to a vendor until the streams end)."""
        yield adapter.changes_ready_in
        while not self._read_page(side, adapter, read_ahead=True):
            if self._ctx.stop():
                # a page asked for ahead is from now: it must not be read after writes
                self._close_stream(side)
                break
            yield adapter.changes_ready_in
        self._look_up_unobserved(side, adapter)
        sweep = plan_sweep(self._ctx, side, adapter)
        if sweep.items:
            self._ctx.state.deferred.update(link.link_id for link in sweep.links)
            self._scheduler.add_background(Task(self._sweep_steps(adapter, sweep)))

    def _look_up_unobserved(self, side: Side, adapter: Adapter) -> None:
        """Look up, in the background, the links never read on `side`, a ledger page at a
        time (a tenant's worth is never held at once). Until the last page is read, a pair
        with no state on `side` waits (`RunState.unread_sides`) instead of being decided
        unknown: the same as deferring each, without a set of every id. None looked for
        where the run's start found none (`RunContext.facts`)."""
        if side not in self._ctx.facts().unread:
            return
        pages = self._ctx.ledger.unobserved(side)
        first = next(pages, None)
        if first is None:
            return
        self._ctx.state.unread_sides.add(side)
        steps = self._unobserved_steps(side, adapter, itertools.chain([first], pages))
        self._scheduler.add_background(Task(steps))

    def _unobserved_steps(
        self, side: Side, adapter: Adapter, pages: Iterator[list[LinkIds]]
    ) -> Iterator[ReadyIn]:
        state = self._ctx.state
        try:
            for page in pages:
                read = yield from self._lookup_steps(side, adapter, page)
                if not read:
                    return  # a read failed: the rest is read next run
        finally:
            state.unread_sides.discard(side)
            state.decide_due = True

    def _sweep_steps(self, adapter: Adapter, sweep: Sweep) -> Iterator[ReadyIn]:
        """Check a batch of the sweep's links at a time (bulk reads), recording what became
        of each ticket, and when each was last checked."""
        ctx, side = self._ctx, sweep.side

        def checked(link_ids: list[int]) -> None:
            if not ctx.options.dry_run:
                ctx.ledger.mark_checked(side, link_ids, ctx.now())

        return self._read_steps(
            side, adapter, sweep.links, sweep.reader(adapter), "sweep", "swept", on_found=checked
        )

    def _read_page(self, side: Side, adapter: Adapter, *, read_ahead: bool = False) -> bool:
        """Read and record one page of the side's change stream; True when the stream has
        caught up (or failed: whatever was recorded stays, the rest is read next time).
        A page read ahead is recorded behind the reads (`Recorder`): the next page is
        looked up and built while the ledger records it.

        The stream stays open between pages, so that pages can be read one at a time
        while vendor jobs run (`idle`) without starting over. A stream opened with
        `read_ahead` (`Adapter.changes`) is read to its end, or closed, before anything is
        written."""
        ctx, state = self._ctx, self._ctx.state
        stream = self._streams.get(side)
        if stream is None:
            if side in self._cursors:
                cursor = self._cursors[side]
            else:
                cursor = self._cursors[side] = ctx.facts().cursors.get(side)
            stream = self._streams[side] = adapter.changes(cursor, read_ahead=read_ahead)
        try:
            page = next(stream, None)
        except AdapterError as exc:
            self._streams.pop(side, None)
            self._unread[side] = 0  # no more reads while jobs run: confirm retries
            state.counts[f"{side}.read_errors"] += 1
            state.gave_up(exc, side)
            if isinstance(exc, AccountBusyError):  # a worker's run: back with the turn
                log.info("observe.account_busy", side=side, error=str(exc))
                if side not in state.unavailable:
                    state.turn_sides.add(side)
            elif side not in state.unavailable:
                log.warning("observe.failed", side=side, error=str(exc))
            # the side's fresh state is unknown: deciding from the old view could write
            # over a change not yet read, so this run decides and writes nothing
            state.unavailable.setdefault(side, str(exc))
            return True
        if page is None or page.complete:
            self._streams.pop(side, None)
        if page is None:
            self._unread[side] = 0
            return True
        if not page.views:
            # an idle stream's page: nothing to record; its cursor goes with the run's end
            self._hold_cursor(side, page.cursor)
            self._unread[side] = 0
            return page.complete
        tickets = [v.ticket_id for v in page.views]
        with self._record.beside(side, tickets):
            links, held = ctx.ledger.links_and_states(side, tickets)
        views = [(links[v.ticket_id], v) for v in page.views if v.ticket_id in links]
        state.counts[f"{side}.changes_read"] += len(page.views)
        progress.current().advance(f"reading {side}", len(page.views))
        if not views:  # only tickets no link holds
            self._hold_cursor(side, page.cursor)
        else:
            self._record.observations(
                side,
                adapter,
                views,
                cursor=page.cursor,
                makers_unread=page.makers_unread,
                read="changes",
                held=held,
                behind=read_ahead,
            )
            if page.cursor is not None and not ctx.options.dry_run:
                self._cursors[side] = page.cursor
                self._held_cursors.pop(side, None)  # moved past it, with what it recorded
        caught_up = page.complete or not page.views
        self._unread[side] = 0 if caught_up else max(0, self._unread[side] - len(page.views))
        return page.complete

    def _hold_cursor(self, side: Side, cursor: str | None) -> None:
        """Move `side`'s cursor past a page that held nothing to record, in the ledger only
        when the run ends (`held_cursors`): a run that dies first reads those pages again,
        and nothing else is lost."""
        if cursor is None or cursor == self._cursors.get(side) or self._ctx.options.dry_run:
            return
        self._cursors[side] = self._held_cursors[side] = cursor

    def held_cursors(self) -> dict[Side, str]:
        """The cursors moved past pages with nothing to record, not yet in the ledger: the
        run writes them with its end (`Ledger.finish_run`), after every page before them
        is recorded; a run ending by an exception leaves them (what failed may be such a
        page's predecessor)."""
        return dict(self._held_cursors)

    def _lookup_steps(
        self,
        side: Side,
        adapter: Adapter,
        links: Sequence[LinkIds],
        known: set[int] | None = None,
    ) -> Generator[ReadyIn, None, bool]:
        """Look the links up a batch at a time (see `_read_steps`)."""
        return self._read_steps(
            side, adapter, links, adapter.lookup, "lookup", "lookups", known=known
        )

    def _read_steps(
        self,
        side: Side,
        adapter: Adapter,
        links: Sequence[LinkIds],
        read: Callable[[list[int]], Mapping[int, TicketView]],
        event: str,
        counter: str,
        *,
        known: set[int] | None = None,
        on_found: Callable[[list[int]], None] | None = None,
    ) -> Generator[ReadyIn, None, bool]:
        """Read the links' tickets a batch at a time with `read`, recording what it finds
        and yielding after each batch. A link stops waiting (`deferred`) once its batch is
        read, or when the reads stop (the first failure ends them). The ticket ids whose
        state became known are added to `known`; `on_found` gets their link ids."""
        state = self._ctx.state
        try:
            for chunk in chunked(links, adapter.batch_limit):
                by_ticket = {link.ticket(side): link for link in chunk}
                try:
                    found = read(list(by_ticket))
                except AdapterError as exc:
                    state.counts[f"{side}.read_errors"] += 1
                    state.gave_up(exc, side)
                    log.warning(f"{event}.failed", side=side, error=str(exc))
                    return False
                state.counts[f"{side}.{counter}"] += len(by_ticket)
                progress.current().advance(f"reading {side}", len(by_ticket))
                views = [(by_ticket[i].link_id, v) for i, v in found.items() if i in by_ticket]
                self._record.observations(side, adapter, views, read=event)
                if known is not None:
                    known.update(found)
                if on_found is not None:
                    on_found([link_id for link_id, _ in views])
                state.deferred.difference_update(link.link_id for link in chunk)
                state.decide_due = True
                yield now_ready
            return True
        finally:
            state.deferred.difference_update(link.link_id for link in links)
