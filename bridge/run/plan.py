"""What a run decided, one line per link, as people and scripts read it.

`bridge sync --dry-run` prints these lines (`iter_plan`), `--json` emits them (`as_json`),
a migration sums them up; the decision log event carries the same fields. They are built
in one place, `plan_line`, from a pair and its decision. The link's ticket ids are kept
per side, in the pair's order, and named after the side in the output
(`<side> 1` in text, `<side>_id` in JSON and logs), so no vendor is named here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from bridge.core.model import Decision, Side, Sides
from bridge.ledger.sync import PairView

__all__ = ["PlanLine", "iter_plan", "plan_line"]


@dataclass(frozen=True, slots=True)
class PlanLine:
    link_id: int
    #: the link's ticket on each side, in the pair's order
    tickets: Mapping[Side, int]
    outcome: str
    target: Side | None
    transitions: tuple[str, ...]
    reason: str

    def ticket_fields(self) -> dict[str, int]:
        """`<side>_id` → ticket id, in the pair's order: the field names of JSON and logs."""
        return {f"{side}_id": ticket for side, ticket in self.tickets.items()}

    def as_json(self) -> dict[str, object]:
        return {
            "link": self.link_id,
            **self.ticket_fields(),
            "outcome": self.outcome,
            "target": self.target,
            "transitions": list(self.transitions),
            "reason": self.reason,
        }


def plan_line(pair: PairView, decision: Decision, sides: Sides) -> PlanLine:
    """The plan line of `decision` for `pair` (the one place a `PlanLine` is built)."""
    return PlanLine(
        pair.ids.link_id,
        {side: pair.ids.ticket(side) for side in sides},
        decision.outcome.value,
        decision.target,
        tuple(t.value for t in decision.transitions),
        decision.reason,
    )


def iter_plan(lines: Iterable[PlanLine]) -> Iterator[str]:
    for line in lines:
        arrow = " then ".join(line.transitions) or "-"
        tickets = ", ".join(f"{side} {ticket}" for side, ticket in line.tickets.items())
        yield (
            f"link {line.link_id} ({tickets}): {line.outcome} {line.target or ''} {arrow} "
            f"({line.reason})"
        )
