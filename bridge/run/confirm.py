"""Confirm: re-read the targets of `sent` operations, then settle what is still unconfirmed.

Confirmation is observation: an observation that reaches the state an operation waits
for confirms it (`SyncStore.record_observations`). So this step only reads: the targets'
change streams first (cheap, and they show purges), then direct lookups, in bulk, for
whatever they did not show; `settle.Settler.settle_unreached` then decides, for each
operation still `sent`, whether the re-read allows a resend. A run confirms at its start
(what earlier runs left) and after each round of writes.

Seam: **a worker process will run apply and confirm on its own.** `Confirmer` reads
through a `Reader` (in a sync run, the observe step), never through another step's state,
so a worker gives it any reader of change streams and lookups.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol

from bridge.core.model import Side
from bridge.ledger.sync import LinkIds, OperationView
from bridge.ledger.tables import OperationStatus
from bridge.run.jobs import Jobs
from bridge.run.settle import Settler
from bridge.run.state import RunContext

__all__ = ["Confirmer", "Reader"]


class Reader(Protocol):
    """The reads confirm needs, recording what they find (`observe.Observer`)."""

    def read_changes(self, side: Side) -> None:
        """Read and record `side`'s change stream up to now."""
        ...

    def look_up_now(self, side: Side, links: Sequence[LinkIds]) -> set[int]:
        """Look the links' tickets on `side` up and record them; the ids now known."""
        ...


class Confirmer:
    """The confirm step of the run of `ctx`."""

    def __init__(self, ctx: RunContext, jobs: Jobs, reader: Reader, settler: Settler) -> None:
        self._ctx = ctx
        self._jobs = jobs
        self._reader = reader
        self._settler = settler
        #: whether the last `confirm_sent` found operations sent (None: not called yet)
        self.found_sent: bool | None = None

    def confirm_sent(self, *, none_sent: bool = False) -> None:
        """Re-read the targets of sent operations: the change streams first, then direct
        lookups for whatever they did not show (not for operations whose job still runs);
        then settle what is still unconfirmed. `none_sent`: the caller knows there is
        none (nothing read)."""
        ctx = self._ctx
        sent = [] if none_sent else ctx.ledger.operations([OperationStatus.SENT])
        self.found_sent = bool(sent)
        if not sent:
            return
        targets = {op.target for op in sent}
        for side, _adapter in ctx.reachable():
            if side in targets:
                self._reader.read_changes(side)
        by_side: dict[Side, list[OperationView]] = defaultdict(list)
        for op in ctx.ledger.operations([OperationStatus.SENT]):
            if not self._jobs.running(op):
                by_side[op.target].append(op)
        known: dict[Side, set[int]] = defaultdict(set)
        for side, ops in by_side.items():
            if side in ctx.adapters:
                known[side] = self._reread(side, ops)
        self._settler.settle_unreached(known)

    def _reread(self, side: Side, ops: Sequence[OperationView]) -> set[int]:
        """Look the operations' targets up in bulk; the ticket ids whose state is known."""
        pairs = self._ctx.ledger.load_pairs(op.link_id for op in ops)
        links = list(dict.fromkeys(pairs[op.link_id].ids for op in ops))
        return self._reader.look_up_now(side, links)
