"""The guards: a purge is irreversible, so two checks stand before every one sent, and
one stands before every soft delete so that none turns into a purge.

* The per-run cap: if the run would purge more than `max_purges_per_run` (counted over the
  whole run), the purges ready at that point are *all* held (a mass purge is suspicious as
  a whole) until a run with `--allow-mass-purge` releases them.
* The pre-purge check: the target is re-read right before each purge batch, and a ticket
  active there is never purged (the operation fails, for a person to look at).
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from bridge.core.contract import Adapter, AdapterError
from bridge.core.model import Side, Transition
from bridge.ledger.sync import OperationView
from bridge.ledger.tables import OperationStatus
from bridge.run.state import RunContext

__all__ = ["PurgeCap", "check_before_purge", "check_before_soft_delete"]

log = structlog.get_logger("bridge.sync")


class PurgeCap:
    """`max_purges_per_run`, over the whole run of `ctx`."""

    def __init__(self, ctx: RunContext) -> None:
        self._ctx = ctx
        #: purges let through so far in this run
        self._released: set[int] = set()

    def admit(self, ops: Sequence[OperationView]) -> list[OperationView]:
        """The operations that may go now: all of them, or, when the run's purges would
        exceed the cap, all but the purges, which are held."""
        ctx, options = self._ctx, self._ctx.options
        purges = [op for op in ops if op.transition is Transition.PURGE]
        others = [op for op in ops if op.transition is not Transition.PURGE]
        cap = options.max_purges_per_run
        total = len(self._released | {op.id for op in purges})
        if purges and total > cap and not options.allow_mass_purge:
            reason = (
                f"{total} purges exceed max_purges_per_run={cap}; held "
                "(run with --allow-mass-purge to release them)"
            )
            ctx.ledger.hold([op.id for op in purges], run_id=ctx.state.run_id, reason=reason)
            ctx.state.counts["purges_held"] += len(purges)
            log.warning("purges.held", run=ctx.state.run_id, count=len(purges), cap=cap)
            return others
        held = [op.id for op in purges if op.status == OperationStatus.HELD]
        if held:
            ctx.ledger.release_held(held)
        self._released.update(op.id for op in purges)
        return others + purges


def check_before_purge(
    ctx: RunContext, target: Side, adapter: Adapter, ops: Sequence[OperationView]
) -> list[OperationView]:
    """Re-read the target right before purging and never purge a ticket that is active
    there (refused, and reported for a person). Nothing is purged when the check fails."""
    try:
        live = adapter.live([op.ticket_id for op in ops])
    except AdapterError as exc:
        log.warning("purge.precheck_failed", side=target, error=str(exc))
        return []
    refused = {op.id: "target is active: purge refused" for op in ops if op.ticket_id in live}
    if refused:
        ctx.ledger.fail(refused, run_id=ctx.state.run_id, retry=False)
        ctx.state.counts["purges_refused"] += len(refused)
    return [op for op in ops if op.ticket_id not in live]


def check_before_soft_delete(
    ctx: RunContext, target: Side, adapter: Adapter, ops: Sequence[OperationView]
) -> list[OperationView]:
    """Never send a soft delete the target would carry out as a permanent deletion
    (refused, and reported for a person). Nothing is sent when the check fails."""
    try:
        destroyed = adapter.destroyed_by(Transition.SOFT_DELETE, [op.ticket_id for op in ops])
    except AdapterError as exc:
        log.warning("soft_delete.precheck_failed", side=target, error=str(exc))
        return []
    refused = {op.id: destroyed[op.ticket_id] for op in ops if op.ticket_id in destroyed}
    if refused:
        ctx.ledger.fail(refused, run_id=ctx.state.run_id, retry=False)
        ctx.state.counts["soft_deletes_refused"] += len(refused)
        log.warning("soft_delete.refused", side=target, count=len(refused))
    return [op for op in ops if op.ticket_id not in destroyed]
