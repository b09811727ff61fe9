"""Recording what a run learnt: what each read found, and which writes failed.

Observations go to the ledger with their cause (in one transaction with the cursor of the
page they came from), or, in a dry run, to the overlay the decisions read instead. Every
read of the run (change streams, lookups, the sweep, confirming re-reads) records through
here, so that a ticket's state is written the same way whoever read it; it is the ledger
write that follows each vendor answer.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

import structlog

from bridge.core.contract import Adapter, TicketView
from bridge.core.model import Cause, Observation, Side, State
from bridge.ledger.behind import WriteBehind
from bridge.run.state import RunContext

__all__ = ["RETENTION_SLACK", "Recorder", "cause"]

#: a vendor retention job runs "about" on time: allow this much early for attribution
RETENTION_SLACK = timedelta(days=1)
#: what the ledger holds for a link it does not know (never read on that side)
_UNKNOWN: tuple[State | None, datetime | None] = (None, None)

log = structlog.get_logger("bridge.sync")


class Recorder:
    """Writes observations and failures for the run of `ctx`.

    A change stream's page may be recorded behind the run (`behind`, where the ledger
    gains by it: `bridge.ledger.behind`) while the next page is read: every other write
    here, and every read of the ledger, waits for it first; the next page's lookup of
    links it does not hold goes on beside it (`beside`)."""

    def __init__(self, ctx: RunContext) -> None:
        self._ctx = ctx
        #: the write-behind, made at the first page recorded behind (None: none yet)
        self._writer: WriteBehind[tuple[Side, frozenset[int]]] | None = None

    def settle(self) -> None:
        """Wait for the page being recorded behind the run (its error raised here)."""
        if self._writer is not None:
            self._writer.settle()

    @contextmanager
    def beside(self, side: Side, ticket_ids: Collection[int]) -> Iterator[None]:
        """The ledger reads inside the block, of `side`'s `ticket_ids`, go on while pages
        are recorded behind the run when they hold none of them (of the other side, or
        other tickets: a batch writes its own side's columns of its own links only);
        otherwise those pages are settled first."""
        writer = self._writer
        labels = () if writer is None else writer.labels
        if writer is None or not labels:
            yield
            return
        if any(s == side and not written.isdisjoint(ticket_ids) for s, written in labels):
            writer.settle()
            yield
            return
        with writer.beside():
            yield

    def close(self, *, quietly: bool = False) -> None:
        """Settle what is recorded behind and end its thread. `quietly`: the run is
        already failing; a write's own error is logged, not raised over the run's."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            writer.close()
        except Exception as exc:
            if not quietly:
                raise
            log.error("record.failed", run=self._ctx.state.run_id, error=type(exc).__name__)

    def observations(
        self,
        side: Side,
        adapter: Adapter,
        views: Sequence[tuple[int, TicketView]],
        *,
        cursor: str | None = None,
        makers_unread: bool = False,
        read: str,
        held: Mapping[int, tuple[State | None, datetime | None]] | None = None,
        behind: bool = False,
    ) -> None:
        """Record what `side` showed of these links (each view with its link's id; and
        move its cursor to `cursor`), through `read` (`READS`); with `makers_unread`
        (`ChangePage`), the makers of the views whose state is not the one held are asked
        of the adapter first. `held`: the links' states on `side` as the caller read them
        with the links (`Ledger.links_and_states`), else read here. `behind`: recorded
        behind the run where the ledger allows, the caller reading on meanwhile (a change
        stream's page; see the class)."""
        ctx, state = self._ctx, self._ctx.state
        if held is None:
            # only a change the vendor gives no cause for is attributed from what was held
            unexplained = [link_id for link_id, view in views if view.cause is None]
            held = ctx.ledger.side_states(side, unexplained) if unexplained else {}
        if makers_unread:
            changed = [
                view
                for link_id, view in views
                if view.cause is None and held.get(link_id, _UNKNOWN)[0] is not view.state
            ]
            made = {v.ticket_id: v for v in adapter.makers(changed)} if changed else {}
            views = [(link_id, made.get(view.ticket_id, view)) for link_id, view in views]
        seen_at = ctx.now()
        # a link the ledger holds no state for is a first sighting: the view's own cause
        # (`cause` would say the same), without a call per row of a first read
        observations = [
            Observation(
                link_id=link_id,
                side=side,
                ticket_id=view.ticket_id,
                state=view.state,
                seen_at=seen_at,
                vendor_time=view.vendor_time,
                actor_id=view.actor_id,
                cause=cause(adapter, held[link_id], view, seen_at)
                if link_id in held
                else view.cause,
                status_id=view.status_id,
                read=read,
            )
            for link_id, view in views
        ]
        if ctx.options.dry_run:
            for observation in observations:
                state.overlay[observation.link_id][side] = observation
            return
        write = functools.partial(
            ctx.ledger.record_observations,
            state.run_id,
            observations,
            cursors={side: cursor} if cursor is not None else None,
        )
        done = functools.partial(self._recorded, side, read)
        if behind and self._writer is None:
            self._writer = ctx.ledger.write_behind()
        if behind and self._writer is not None:
            tickets = frozenset(o.ticket_id for o in observations)
            self._writer.submit(write, done, label=(side, tickets))
            return
        self.settle()
        done(write())

    def _recorded(self, side: Side, read: str, result: tuple[set[int], int]) -> None:
        """Count what a batch of observations changed and confirmed."""
        state = self._ctx.state
        pending, confirmed = result
        state.counts[f"{side}.changed"] += len(pending) - confirmed
        if read == "changes" and state.count_unannounced and len(pending) > confirmed:
            # a change a webhook announced was recorded by its targeted run: the stream
            # shows it again as no change; what is left, no webhook brought in time
            state.counts[f"{side}.unannounced"] += len(pending) - confirmed
        state.counts["confirmed"] += confirmed

    def failures(self, errors: Mapping[int, str], *, retry: bool, charged: bool = True) -> None:
        """Record failed operations (id → what went wrong): planned again while attempts
        are left (`retry`), else failed for a person; an attempt not `charged` is given
        back (`Ledger.fail`)."""
        ctx, counts = self._ctx, self._ctx.state.counts
        permanent = ctx.ledger.fail(
            errors,
            run_id=ctx.state.run_id,
            retry=retry,
            max_attempts=ctx.options.max_attempts,
            charged=charged,
        )
        counts["failed"] += permanent
        counts["retry"] += len(errors) - permanent


def cause(
    adapter: Adapter,
    held: tuple[State | None, datetime | None],
    view: TicketView,
    now: datetime,
) -> Cause | None:
    """Why the vendor's state changed, from the state the ledger `held` for the ticket (with
    its vendor time when soft-deleted). The vendor's word when it gives one; a purge
    that the vendor's retention period explains is `retention`; anything else is a
    person (or their automation): bridge's own writes are recognised as confirmations
    before this matters."""
    if view.cause is not None:
        return view.cause
    previous, deleted_at = held
    if previous is None:
        return None  # a first sighting, not a change
    if view.state is not State.PURGED:
        return Cause.USER
    if previous is State.SOFT_DELETED and deleted_at is not None:
        purged_at = view.vendor_time or now
        if purged_at + RETENTION_SLACK >= deleted_at + adapter.retention_period:
            return Cause.RETENTION
    return Cause.USER
