"""The run names no vendor, and its outputs name sides: plan lines, `--prefer` values."""

from __future__ import annotations

import ast
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


@pytest.mark.parametrize("path", sorted(RUN.glob("*.py")), ids=lambda p: p.name)
def test_a_run_module_imports_no_vendor_and_names_none(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    assert not [name for name in imported if name and name.startswith("bridge.vendors")]
    assert "superoffice" not in text.lower()
    assert "zendesk" not in text.lower()


def test_a_plan_line_names_each_ticket_after_its_side() -> None:
    pair = PairView(
        LinkIds(3, 11, 22), None, 0, None, None, None, None, None, None, None, None, None, False
    )
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
