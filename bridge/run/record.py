"""Recording what a run learnt: what each read found, and which writes failed.

Observations go to the ledger with their cause (in one transaction with the cursor of the
page they came from), or, in a dry run, to the overlay the decisions read instead. Every
read of the run (change streams, lookups, the sweep, confirming re-reads) records through
here, so that a ticket's state is written the same way whoever read it; it is the ledger
write that follows each vendor answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from bridge.core.contract import Adapter, TicketView
from bridge.core.model import Cause, Observation, Side, State
from bridge.run.state import RunContext

__all__ = ["RETENTION_SLACK", "Recorder", "cause"]

#: a vendor retention job runs "about" on time: allow this much early for attribution
RETENTION_SLACK = timedelta(days=1)
#: what the ledger holds for a link it does not know (never read on that side)
_UNKNOWN: tuple[State | None, datetime | None] = (None, None)


class Recorder:
    """Writes observations and failures for the run of `ctx`."""

    def __init__(self, ctx: RunContext) -> None:
        self._ctx = ctx

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
    ) -> None:
        """Record what `side` showed of these links (each view with its link's id; and
        move its cursor to `cursor`), through `read` (`READS`); with `makers_unread`
        (`ChangePage`), the makers of the views whose state is not the one held are asked
        of the adapter first. `held`: the links' states on `side` as the caller read them
        with the links (`Ledger.links_and_states`), else read here."""
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
        pending, confirmed = ctx.ledger.record_observations(
            state.run_id, observations, cursors={side: cursor} if cursor is not None else None
        )
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
