"""A person settles a conflict or divergence: plan what makes the other side match."""

from __future__ import annotations

from enum import StrEnum

from bridge.core.decide import Policy, SideState, decide
from bridge.core.model import Cause, Decision, Outcome, Side, State
from bridge.errors import BridgeError
from bridge.ledger import Ledger
from bridge.ledger.sync import PairView, PlannedDecision
from bridge.vendors.registry import SIDES, SUPEROFFICE, ZENDESK

__all__ = ["Prefer", "ResolveError", "resolve"]


class Prefer(StrEnum):
    SUPEROFFICE = "superoffice"
    ZENDESK = "zendesk"
    ACTIVE = "active"


class ResolveError(BridgeError, ValueError):
    """The link cannot be settled that way; the message says why."""


def _winner(pair: PairView, prefer: Prefer) -> Side:
    if prefer is Prefer.SUPEROFFICE:
        return SUPEROFFICE
    if prefer is Prefer.ZENDESK:
        return ZENDESK
    active = [side for side in SIDES if pair.state(side) is State.ACTIVE]
    if not active:
        raise ResolveError("neither side is active: choose superoffice or zendesk")
    return active[0]


def resolve(ledger: Ledger, superoffice_id: int, prefer: Prefer) -> Decision:
    """Plan the writes that make the other side match the preferred one.

    The preferred side is treated as the one that changed since the base, so the ordinary
    decision rules (and their guards: nothing leaves `purged`) produce the plan; the next
    `bridge sync` sends it.
    """
    link = ledger.links_for_tickets(SUPEROFFICE, [superoffice_id]).get(superoffice_id)
    if link is None:
        raise ResolveError(f"no link for SuperOffice ticket {superoffice_id}")
    pair = ledger.load_pairs([link.link_id])[link.link_id]
    if pair.attention not in ("conflict", "divergence"):
        raise ResolveError(
            f"link of SuperOffice ticket {superoffice_id} has no open conflict or divergence"
        )
    if ledger.links_with_open_operations([link.link_id]):
        raise ResolveError("this link still has operations in flight; run `bridge sync` first")
    winner = _winner(pair, prefer)
    loser_state = pair.state(SIDES.other(winner))
    if loser_state is None or pair.state(winner) is None:
        raise ResolveError("a side's state is unknown; run `bridge sync` first")
    sides = {side: SideState(pair.state(side), pair.vendor_time(side)) for side in SIDES}
    decision = decide(loser_state, SIDES, sides, Policy())
    if decision.outcome not in (Outcome.APPLY, Outcome.AGREE):
        raise ResolveError(f"cannot make {SIDES.other(winner)} match {winner}: {decision.reason}")
    reason = f"resolved by hand: prefer {prefer}"
    settled = Decision(
        decision.outcome, decision.target, decision.transitions, decision.new_base, reason
    )
    ledger.record_decisions(None, [PlannedDecision(pair, settled, Cause.USER)])
    return settled
