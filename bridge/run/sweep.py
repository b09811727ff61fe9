"""The vanished-ticket sweep: which links a run checks on one side, and how.

Tickets can disappear without a trace in a change stream (an admin's hard delete, a grace
period ending). Each run checks, on each side, the links not checked for `sweep_period`
(oldest first, at most `sweep_max`), and, where the adapter declares its vendor's own
retention purge silent (`Adapter.retention_is_silent`), the soft-deleted tickets whose
retention period may have ended. The observe step reads them in the background through
`Adapter.sweep`; this module only says what to read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bridge.core.contract import Adapter, TicketView
from bridge.core.model import Side, State
from bridge.ledger.sync import LinkIds
from bridge.run.record import RETENTION_SLACK
from bridge.run.state import RunContext

__all__ = ["Sweep", "plan_sweep"]


@dataclass(frozen=True, slots=True)
class Sweep:
    """The links whose ticket on `side` is checked for having vanished this run."""

    side: Side
    #: each link with the state the ledger holds for its ticket on `side`, by link id
    items: Sequence[tuple[LinkIds, State]]
    #: links whose purge bridge copied to `side` and that are due: expected gone
    expected_gone: frozenset[int]

    @property
    def links(self) -> list[LinkIds]:
        return [link for link, _ in self.items]

    def reader(self, adapter: Adapter) -> Callable[[list[int]], dict[int, TicketView]]:
        """The bulk read for a batch of these tickets: a ticket in no listing any more is
        a purge for the decision."""
        side = self.side
        held = {link.ticket(side): state for link, state in self.items}
        gone = {link.ticket(side) for link, _ in self.items if link.link_id in self.expected_gone}

        def sweep(ticket_ids: list[int]) -> dict[int, TicketView]:
            known = {ticket_id: held[ticket_id] for ticket_id in ticket_ids}
            return adapter.sweep(known, expected_gone=gone.intersection(ticket_ids))

        return sweep


def plan_sweep(ctx: RunContext, side: Side, adapter: Adapter) -> Sweep:
    """The links to check on `side` this run: those due (`RunOptions.sweep_period`,
    `sweep_max`) and, where the vendor's retention purge is silent, soft-deleted tickets
    its retention job may have removed, with the links whose copied purge is due."""
    now = ctx.now()
    items: dict[LinkIds, State] = {}
    expected: set[int] = set()
    if adapter.retention_is_silent:
        pages = ctx.ledger.retention_candidates(
            side, now - adapter.retention_period + RETENTION_SLACK, now
        )
        for page in pages:
            for link, expected_gone in page:
                items[link] = State.SOFT_DELETED
                if expected_gone:
                    expected.add(link.link_id)
    if ctx.options.sweep_max:
        due = ctx.ledger.sweep_due(
            side,
            now - ctx.options.sweep_period,
            ctx.options.sweep_max,
            remember=not ctx.options.dry_run,
            floors=ctx.facts().sweep_floors,
        )
        for link, state in due:
            items.setdefault(link, state)
    ordered = sorted(items.items(), key=lambda item: item[0].link_id)
    return Sweep(side, ordered, frozenset(expected))
