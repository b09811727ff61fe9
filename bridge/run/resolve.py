"""A person settles a conflict or divergence: plan what makes the other side match."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.core.decide import Policy, SideState, decide
from bridge.core.model import Cause, Decision, Outcome, Side, Sides, State
from bridge.errors import BridgeError
from bridge.ledger import Ledger
from bridge.ledger.sync import PairView, PlannedDecision

__all__ = ["LinkTicket", "Prefer", "ResolveError", "resolve"]

_ACTIVE = "active"


@dataclass(frozen=True, slots=True)
class Prefer:
    """Which side's state wins: a side, or (no side) whichever side is active.

    Written on the command line as the side's name or `active`."""

    side: Side | None = None

    def __str__(self) -> str:
        return self.side if self.side is not None else _ACTIVE

    @staticmethod
    def choices(sides: Sides) -> tuple[str, ...]:
        return (*sides, _ACTIVE)

    @classmethod
    def parse(cls, text: str, sides: Sides) -> Prefer:
        """The preference `text` names (one of `choices`); ValueError otherwise."""
        for side in sides:
            if text == side:
                return cls(side)
        if text == _ACTIVE:
            return cls()
        raise ValueError(
            f"unknown preference {text!r}: choose from {', '.join(cls.choices(sides))}"
        )


@dataclass(frozen=True, slots=True)
class LinkTicket:
    """The ticket a person names a link by: its side, its id there, and how messages name
    it (the caller's wording, as in "<vendor> ticket 1001": a vendor's display name is the
    CLI's to know)."""

    side: Side
    ticket_id: int
    name: str


class ResolveError(BridgeError, ValueError):
    """The link cannot be settled that way; the message says why."""


def _winner(pair: PairView, prefer: Prefer, sides: Sides) -> Side:
    if prefer.side is not None:
        return prefer.side
    active = [side for side in sides if pair.state(side) is State.ACTIVE]
    if not active:
        raise ResolveError(f"neither side is active: choose {sides.first} or {sides.second}")
    return active[0]


def resolve(
    ledger: Ledger,
    sides: Sides,
    ticket: LinkTicket,
    prefer: Prefer,
    *,
    operator: str | None = None,
) -> Decision:
    """Plan the writes that make the other side match the preferred one.

    The preferred side is treated as the one that changed since the base, so the ordinary
    decision rules (and their guards: nothing leaves `purged`) produce the plan; the next
    `bridge sync` sends it. `operator` (who decided) is recorded with the resolution and
    its planned writes, in the same transaction.
    """
    link = ledger.links_for_tickets(ticket.side, [ticket.ticket_id]).get(ticket.ticket_id)
    if link is None:
        raise ResolveError(f"no link for {ticket.name}")
    pair = ledger.load_pairs([link.link_id])[link.link_id]
    if pair.attention not in ("conflict", "divergence"):
        raise ResolveError(f"link of {ticket.name} has no open conflict or divergence")
    if ledger.links_with_open_operations([link.link_id]):
        raise ResolveError("this link still has operations in flight; run `bridge sync` first")
    winner = _winner(pair, prefer, sides)
    loser_state = pair.state(sides.other(winner))
    if loser_state is None or pair.state(winner) is None:
        raise ResolveError("a side's state is unknown; run `bridge sync` first")
    states = {side: SideState(pair.state(side), pair.vendor_time(side)) for side in sides}
    decision = decide(loser_state, sides, states, Policy())
    if decision.outcome not in (Outcome.APPLY, Outcome.AGREE):
        raise ResolveError(f"cannot make {sides.other(winner)} match {winner}: {decision.reason}")
    reason = f"resolved by hand: prefer {prefer}"
    settled = Decision(
        decision.outcome, decision.target, decision.transitions, decision.new_base, reason
    )
    ledger.record_decisions(None, [PlannedDecision(pair, settled, Cause.USER)], operator=operator)
    return settled
