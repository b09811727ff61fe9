"""The three-way decision for one link: base, both sides and policy in, an action out.

Pure: no I/O, no clock, no ledger. The run observes, calls `decide` for each link, records
the decision and only then talks to the vendors; keeping this apart makes every rule testable
over the whole input space (see `docs/decision-table.md`).

The rules, in the order they are tried:

1. a side unknown → UNKNOWN (nothing written, base kept);
2. both sides equal → AGREE (base := that state);
3. no base → DIVERGENCE (reported, never acted on: no delete or purge without a base);
4. one side changed (the other still equals base), or one side is part-way along the path the
   other took (`base=active`, one side `soft_deleted`, the other `purged`: a partial copy, for
   instance a run killed between the soft delete and the purge) → copy to the side behind;
5. both changed differently → CONFLICT, unless the conflict policy names a winner whose
   state the loser can still reach.

Copying is limited by direction (SKIP, or CONFLICT when it is a conflict's resolution that is
blocked) and by the purge policy: a purge that is not propagated is dropped from the plan and
the source's `purged` counts as agreeing with the target's `soft_deleted` for base purposes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bridge.core.model import (
    Cause,
    Decision,
    Observation,
    Outcome,
    Side,
    Sides,
    State,
    Transition,
    apply,
    path,
)

__all__ = [
    "BOTH_WAYS",
    "MANUAL",
    "ConflictPolicy",
    "ConflictRule",
    "Direction",
    "Policy",
    "SideState",
    "decide",
]


@dataclass(frozen=True, slots=True)
class Direction:
    """Which way changes may be copied: both ways, or only from `source` to the other side.

    Written in config and on the command line as `both` or `<source>-to-<target>`."""

    source: Side | None = None

    def allows_writing(self, target: Side) -> bool:
        """Whether bridge may write to `target` under this direction."""
        return self.source is None or target != self.source

    def label(self, sides: Sides) -> str:
        return "both" if self.source is None else f"{self.source}-to-{sides.other(self.source)}"

    @staticmethod
    def choices(sides: Sides) -> tuple[str, ...]:
        return ("both", *(f"{side}-to-{sides.other(side)}" for side in sides))

    @classmethod
    def parse(cls, text: str, sides: Sides) -> Direction:
        """The direction `text` names (one of `choices`); ValueError otherwise."""
        for side in (None, *sides):
            if cls(side).label(sides) == text:
                return cls(side)
        raise ValueError(f"unknown direction {text!r}: choose from {', '.join(cls.choices(sides))}")


class ConflictRule(StrEnum):
    """How a conflict (both sides changed, differently) is settled; `manual` reports it."""

    MANUAL = "manual"
    SIDE_WINS = "wins"
    LATEST_WINS = "latest-wins"
    KEEP_ACTIVE = "keep-active"


@dataclass(frozen=True, slots=True)
class ConflictPolicy:
    """A conflict rule, and for `SIDE_WINS` the side that wins.

    Written in config and on the command line as `manual`, `<side>-wins`, `latest-wins` or
    `keep-active`."""

    rule: ConflictRule = ConflictRule.MANUAL
    winner: Side | None = None

    def __post_init__(self) -> None:
        if (self.rule is ConflictRule.SIDE_WINS) != (self.winner is not None):
            raise ValueError("a winner is named with the side-wins rule, and only with it")

    def __str__(self) -> str:
        return f"{self.winner}-wins" if self.winner is not None else self.rule.value

    @staticmethod
    def choices(sides: Sides) -> tuple[str, ...]:
        rules = (ConflictRule.MANUAL, ConflictRule.LATEST_WINS, ConflictRule.KEEP_ACTIVE)
        return (rules[0].value, *(f"{side}-wins" for side in sides), *(r.value for r in rules[1:]))

    @classmethod
    def parse(cls, text: str, sides: Sides) -> ConflictPolicy:
        """The policy `text` names (one of `choices`); ValueError otherwise."""
        for side in sides:
            if text == f"{side}-wins":
                return cls(ConflictRule.SIDE_WINS, side)
        for rule in ConflictRule:
            if rule is not ConflictRule.SIDE_WINS and text == rule.value:
                return cls(rule)
        choices = ", ".join(cls.choices(sides))
        raise ValueError(f"unknown conflict policy {text!r}: choose from {choices}")


#: copy both ways; a conflict is reported for a person (the defaults)
BOTH_WAYS = Direction()
MANUAL = ConflictPolicy()


@dataclass(frozen=True, slots=True)
class Policy:
    """The settings that change a decision.

    `propagate_retention_purges` only matters when `propagate_purges` is True: a purge whose
    source cause is `retention` (the vendor's own scrub after its grace period) or
    `archive_retention` (its deletion schedule removing archived tickets) is copied only
    when both are True.
    """

    direction: Direction = BOTH_WAYS
    conflict_policy: ConflictPolicy = MANUAL
    propagate_purges: bool = True
    propagate_retention_purges: bool = False


@dataclass(frozen=True, slots=True)
class SideState:
    """What one side currently says about the linked ticket.

    `state` None means unknown (lookup failed, listing incomplete): the link is left alone.
    `vendor_time` is when the vendor says the state began; it must be timezone-aware, since
    `latest-wins` compares the two sides' times. `cause` is why the state was reached.
    """

    state: State | None
    vendor_time: datetime | None = None
    cause: Cause | None = None

    def __post_init__(self) -> None:
        if self.vendor_time is not None and self.vendor_time.utcoffset() is None:
            raise ValueError("vendor_time must be timezone-aware")

    @classmethod
    def unknown(cls) -> SideState:
        return cls(None)

    @classmethod
    def from_observation(cls, observation: Observation) -> SideState:
        """The side state an observation gives."""
        return cls(observation.state, observation.vendor_time, observation.cause)


_NO_WRITE = frozenset({Outcome.CONFLICT, Outcome.DIVERGENCE, Outcome.UNKNOWN})


# Reasons are a fixed vocabulary (docs/decision-table.md quotes them); side names are the
# only variable part.
_R_AGREE = "in agreement"
_R_NO_BASE = "no base: sides differ"
_R_PURGE_HELD = "purge not propagated (policy)"
_R_RETENTION_PURGE_HELD = "retention purge not propagated (policy)"


def decide(
    base: State | None, sides: Sides, states: Mapping[Side, SideState], policy: Policy
) -> Decision:
    """The action for one link, from its base, both sides' current states and the policy."""
    first, second = states[sides.first].state, states[sides.second].state
    if first is None or second is None:
        return _unknown(sides, first is None, second is None)
    if first == second:
        return Decision(Outcome.AGREE, None, (), first, _R_AGREE)
    if base is None:
        return Decision(Outcome.DIVERGENCE, None, (), None, _R_NO_BASE)

    source = _sole_source(sides, base, first, second)
    if source is not None:
        target = sides.other(source)
        target_state = _known(states[target])
        if target_state is State.PURGED:
            # Only reachable with base == purged: the source came back out of a terminal state.
            reason = f"conflict: {source} left purged; {target} is purged (terminal)"
            return _conflict(reason)
        if not policy.direction.allows_writing(target):
            return Decision(Outcome.SKIP, target, (), None, f"direction: {target} not written")
        behind = target_state != base
        reason = f"{source} changed" + (f"; {target} part-way" if behind else "")
        return _copy(base, states[source], target, target_state, policy, reason)
    return _resolve(base, sides, states, policy)


def _unknown(sides: Sides, first_unknown: bool, second_unknown: bool) -> Decision:
    if first_unknown and second_unknown:
        reason = "both states unknown"
    else:
        reason = f"{sides.first if first_unknown else sides.second} state unknown"
    return Decision(Outcome.UNKNOWN, None, (), None, reason)


def _conflict(reason: str) -> Decision:
    return Decision(Outcome.CONFLICT, None, (), None, reason)


def _known(side: SideState) -> State:
    assert side.state is not None  # unknown sides are handled before any caller
    return side.state


def _intermediate(start: State, end: State) -> frozenset[State]:
    """States strictly between `start` and `end` on the model's path (empty if none)."""
    if start is State.PURGED:
        return frozenset()
    seen: set[State] = set()
    state: State = start
    for transition in path(start, end)[:-1]:
        state = apply(state, transition)
        seen.add(state)
    return frozenset(seen)


def _sole_source(sides: Sides, base: State, first: State, second: State) -> Side | None:
    """The side whose change is to be copied, or None when both changed in ways that clash.

    A side still at base, or already part-way along the path the other side took from base,
    has nothing of its own to contribute: the other side is the source.
    """
    if first == base or first in _intermediate(base, second):
        return sides.second
    if second == base or second in _intermediate(base, first):
        return sides.first
    return None


def _purge_hold(source: SideState, policy: Policy) -> str | None:
    """Why a purge from `source` must not be copied, or None when it may be."""
    if not policy.propagate_purges:
        return _R_PURGE_HELD
    retention = source.cause is not None and source.cause.by_retention
    if retention and not policy.propagate_retention_purges:
        return _R_RETENTION_PURGE_HELD
    return None


def _copy(
    base: State,
    source: SideState,
    target: Side,
    target_state: State,
    policy: Policy,
    reason: str,
) -> Decision:
    """Plan the target's path to the source's state, dropping a purge that policy holds back."""
    source_state = _known(source)
    transitions = path(target_state, source_state)
    hold = _purge_hold(source, policy) if Transition.PURGE in transitions else None
    if hold is None:
        return Decision(Outcome.APPLY, target, transitions, source_state, reason)
    # The purge is always last on a path; what remains ends at soft_deleted, which is what the
    # base becomes, so that the source's `purged` against the target's `soft_deleted` reads as
    # "purge not propagated" on every later run and never as a conflict.
    kept = tuple(t for t in transitions if t is not Transition.PURGE)
    if not kept:
        new_base = None if base is State.SOFT_DELETED else State.SOFT_DELETED
        return Decision(Outcome.SKIP, target, (), new_base, hold)
    return Decision(Outcome.APPLY, target, kept, State.SOFT_DELETED, f"{reason}; {hold}")


def _resolve(
    base: State, sides: Sides, states: Mapping[Side, SideState], policy: Policy
) -> Decision:
    """Both sides changed, differently: settle it by the conflict policy or report it."""
    rule = policy.conflict_policy
    if rule.rule is ConflictRule.MANUAL:
        # base == purged here means both sides came back out of a terminal state: an anomaly
        # (a wrong link or a wrong earlier observation) worth naming as such.
        both = "both left purged" if base is State.PURGED else "both changed"
        return _conflict(f"conflict: {both}")
    label = str(rule)
    if rule.winner is not None:
        winner = rule.winner
    elif rule.rule is ConflictRule.LATEST_WINS:
        first_time = states[sides.first].vendor_time
        second_time = states[sides.second].vendor_time
        if first_time is None or second_time is None or first_time == second_time:
            return _conflict("conflict: latest-wins needs two different vendor times")
        winner = sides.first if first_time > second_time else sides.second
        label = f"latest-wins ({winner} later)"
    else:
        actives = [side for side in sides if states[side].state is State.ACTIVE]
        if not actives:  # unreachable with the three states today; kept as the safe answer
            return _conflict("conflict: keep-active, neither side active")
        winner = actives[0]
    loser = sides.other(winner)
    loser_state = _known(states[loser])
    if loser_state is State.PURGED:
        return _conflict(f"conflict: {rule}: {loser} is purged (terminal)")
    if not policy.direction.allows_writing(loser):
        return _conflict(f"conflict: {rule} would write {loser} against direction")
    return _copy(base, states[winner], loser, loser_state, policy, f"conflict resolved: {label}")
