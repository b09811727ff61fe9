"""Decide: what to do for each candidate link, recorded before anything is sent.

Which links are candidates, and what is decided for each, is the run's `Planner`: a sync
decides the links that changed since their last decision (or stand in conflict) with the
three-way `bridge.core.decide.decide` (`ThreeWay`); a migration decides every unsettled
link with `migration_decision` (`bridge.run.migrate`). The rest is the same for both:
links deferred until a lookup knows them, or with operations still open, wait; each slice
of decisions is one ledger transaction (the base, the attention flag, the outbox rows),
and a dry run keeps them in the plan only.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from bridge import progress
from bridge.core.batches import chunked
from bridge.core.decide import Policy, SideState, decide
from bridge.core.model import Decision, Observation, Outcome, Side, Sides
from bridge.ledger import Ledger
from bridge.ledger.sync import PairView, PlannedDecision
from bridge.run.plan import plan_line
from bridge.run.state import RunContext

__all__ = ["Decider", "Planner", "ThreeWay"]

log = structlog.get_logger("bridge.sync")

#: links decided (and recorded) per transaction
_DECISION_SLICE = 5000


class Planner(Protocol):
    """What a run decides, and for which links."""

    def candidates(self, ledger: Ledger, *, batch: int) -> Iterator[Sequence[PairView]]:
        """The pairs to decide on this pass, as the ledger holds them, a page at a time in
        link order (links with an operation still open left out: they wait for it)."""
        ...

    def any_candidates(self, ledger: Ledger) -> bool:
        """False only when `candidates` would find none: one quick look, so that a pass
        with nothing to decide reads nothing more."""
        ...

    def decide(self, pair: PairView, states: Mapping[Side, SideState]) -> Decision:
        """The decision for one link, from the pair and each side's current state."""
        ...

    def agree_in_bulk(self, ledger: Ledger, *, exclude: Collection[int]) -> int:
        """Record at once the candidates whose sides agree (what `decide` would say for
        each of them), but the `exclude`d links; the number recorded."""
        ...


@dataclass(frozen=True, slots=True)
class ThreeWay:
    """A sync's plan: the links changed since their last decision, or in conflict, each
    decided against its base (`bridge.core.decide.decide`)."""

    policy: Policy
    sides: Sides

    def candidates(self, ledger: Ledger, *, batch: int) -> Iterator[Sequence[PairView]]:
        return ledger.decision_candidates(batch=batch)

    def any_candidates(self, ledger: Ledger) -> bool:
        return ledger.any_decision_candidates()

    def decide(self, pair: PairView, states: Mapping[Side, SideState]) -> Decision:
        return decide(pair.base, self.sides, states, self.policy)

    def agree_in_bulk(self, ledger: Ledger, *, exclude: Collection[int]) -> int:
        return ledger.agree_where_equal(unsettled=False, exclude=exclude)


class Decider:
    """The decide step of the run of `ctx`, with `planner`'s decisions."""

    def __init__(self, ctx: RunContext, planner: Planner) -> None:
        self._ctx = ctx
        self._planner = planner

    def _pages(self) -> Iterator[list[PairView]]:
        """The planner's candidates a slice at a time, less the links deferred until a
        lookup knows them; in a dry run, then the links it observed (its overlay) that the
        ledger does not hold as candidates."""
        ctx, state = self._ctx, self._ctx.state
        seen: set[int] = set()
        for page in self._planner.candidates(ctx.ledger, batch=_DECISION_SLICE):
            if state.overlay:
                seen.update(pair.ids.link_id for pair in page)
            yield [pair for pair in page if not self._waiting(pair)]
        if not state.overlay:
            return
        observed = set(state.overlay) - seen - state.deferred
        observed -= ctx.ledger.links_with_open_operations(observed)
        for link_ids in chunked(sorted(observed), _DECISION_SLICE):
            pairs = sorted(ctx.ledger.load_pairs(link_ids).items())
            yield [pair for _, pair in pairs if not self._waiting(pair)]

    def _waiting(self, pair: PairView) -> bool:
        """Whether a lookup has yet to read this link: deferred by id, or never read on a
        side whose unread links are being looked up (`RunState.unread_sides`)."""
        state = self._ctx.state
        if pair.ids.link_id in state.deferred:
            return True
        known = state.overlay.get(pair.ids.link_id, {})
        return any(pair.state(s) is None and s not in known for s in state.unread_sides)

    def _recording(self) -> bool:
        """Whether decisions are recorded: not in a dry run, nor while a migration's plan
        is reviewed (`RunState.previewing`)."""
        return not (self._ctx.options.dry_run or self._ctx.state.previewing)

    def has_ready(self, count: int) -> bool:
        """Whether at least `count` links are ready to decide now (read no further)."""
        found = 0
        for page in self._pages():
            found += len(page)
            if found >= count:
                return True
        return False

    def decide_pending(self) -> None:
        """Decide every candidate link, a slice at a time as the ledger streams them: each
        slice's decisions are one transaction (undecided links keep their pending flag),
        and memory stays flat however many links changed."""
        state = self._ctx.state
        state.decide_due = False
        if state.unavailable:
            # a side's fresh state is unknown: nothing is decided that writes. The pairs
            # seen alike on both sides agree all the same (their base is what a later
            # change is measured from): a first sync a 429 or a shared account's turn
            # ended midway would otherwise leave every pair without one, and the first
            # change after it would read as a divergence for a person
            self._agree_in_bulk()
            return
        if not state.overlay and not self._planner.any_candidates(self._ctx.ledger):
            return  # an idle run's pass: one read (a dry run's observations are its own)
        if not log.is_enabled_for(logging.DEBUG):
            # agreements in one statement (a first sync's every link); at debug level each
            # is logged, so each is decided here
            self._agree_in_bulk()
        for page in self._pages():
            if page:
                self._decide_slice(page)

    def _agree_in_bulk(self) -> None:
        """Rule 2 for every candidate at once (`Planner.agree_in_bulk`), when recording."""
        state = self._ctx.state
        if not self._recording():
            return
        agreed = self._planner.agree_in_bulk(self._ctx.ledger, exclude=state.deferred)
        state.counts["decision.agree"] += agreed
        state.tally.outcomes[Outcome.AGREE.value] += agreed

    def _decide_slice(self, pairs: Sequence[PairView]) -> None:
        ctx, state = self._ctx, self._ctx.state
        planned: list[PlannedDecision] = []
        # an agreement is only logged at debug level: no plan line is built for it otherwise
        # (a first sync agrees on every link)
        log_agreements = log.is_enabled_for(logging.DEBUG)
        for pair in pairs:
            link_id = pair.ids.link_id
            overlay = state.overlay.get(link_id, {})
            sides = {side: _side_state(pair, side, overlay.get(side)) for side in ctx.sides}
            decision = self._planner.decide(pair, sides)
            if decision.outcome is Outcome.DIVERGENCE and pair.attention == "conflict":
                # no base and the sides differ: a conflict a migration found stays one
                reason = pair.attention_reason or decision.reason
                decision = Decision(Outcome.CONFLICT, None, (), None, reason)
            standing = not pair.pending_decision and link_id not in state.overlay
            if standing and decision.outcome.value == pair.attention:
                continue  # a standing conflict or divergence re-checked: nothing new
            state.counts[f"decision.{decision.outcome.value}"] += 1
            state.tally.add(decision, ctx.sides)
            if log_agreements or decision.outcome is not Outcome.AGREE:
                self._log_decision(pair, decision)
            source = ctx.sides.other(decision.target) if decision.target else None
            planned.append(PlannedDecision(pair, decision, sides[source].cause if source else None))
        progress.current().advance("deciding", len(pairs))
        if planned:
            outcomes = Counter(item.decision.outcome.value for item in planned)
            log.info("decide.batch", run=state.run_id, links=len(planned), **outcomes)
        if not self._recording():
            return
        state.counts["planned"] += ctx.ledger.record_decisions(
            state.run_id, planned, skips_stay_pending=ctx.options.skips_stay_pending
        )
        writes: Counter[Side] = Counter()
        for item in planned:
            if item.decision.outcome is Outcome.APPLY and item.decision.target:
                writes[item.decision.target] += len(item.decision.transitions)
        for target, count in writes.items():
            progress.current().expect(f"writing {target}", count)

    def _log_decision(self, pair: PairView, decision: Decision) -> None:
        ctx, state = self._ctx, self._ctx.state
        line = plan_line(pair, decision, ctx.sides)
        if decision.outcome is not Outcome.AGREE and ctx.options.keep_plan:
            state.plan.append(line)
        log.debug(
            "decision",
            run=state.run_id,
            link=line.link_id,
            **line.ticket_fields(),
            outcome=line.outcome,
            target=line.target,
            transitions=list(line.transitions),
            reason=line.reason,
        )


def _side_state(pair: PairView, side: Side, overlay: Observation | None) -> SideState:
    if overlay is not None:  # a dry run's observation, not recorded
        return SideState.from_observation(overlay)
    return SideState(pair.state(side), pair.vendor_time(side), pair.cause(side))
