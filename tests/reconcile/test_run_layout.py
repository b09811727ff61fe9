"""The run's outputs name sides: plan lines, `--prefer` values (that the run names no vendor
is checked with the other neutral packages in tests/test_architecture.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.core.model import Decision, Outcome, Side, Sides
from bridge.ledger.sync import LinkIds, PairView
from bridge.run.plan import iter_plan, plan_line
from bridge.run.resolve import Prefer
from bridge.vendors.registry import SIDES, SUPEROFFICE, ZENDESK

RUN = Path(__file__).resolve().parents[2] / "bridge" / "run"
#: a pair of sides that no vendor stands on
PAIR = Sides(Side("left"), Side("right"))


def test_a_plan_line_names_each_ticket_after_its_side() -> None:
    pair = PairView(LinkIds(3, 11, 22, SIDES), None, 0, *[None] * 10, False)
    line = plan_line(pair, Decision(Outcome.CONFLICT, None, (), None, "both changed"), SIDES)
    assert line.tickets == {SUPEROFFICE: 11, ZENDESK: 22}
    assert list(iter_plan([line])) == [
        "link 3 (superoffice 11, zendesk 22): conflict  - (both changed)"
    ]
    assert line.as_json() == {
        "link": 3,
        "superoffice_id": 11,
        "zendesk_id": 22,
        "outcome": "conflict",
        "target": None,
        "transitions": [],
        "reason": "both changed",
    }


def test_prefer_is_a_side_or_active() -> None:
    assert Prefer.choices(PAIR) == ("left", "right", "active")
    assert Prefer.parse("right", PAIR) == Prefer(PAIR.second)
    assert str(Prefer.parse("active", PAIR)) == "active"
    with pytest.raises(ValueError, match="choose from left, right, active"):
        Prefer.parse("both", PAIR)
