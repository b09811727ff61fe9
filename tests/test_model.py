"""The state model: which transitions exist, which paths they make, and that purged is final."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import mypy.api
import pytest

from bridge.core.contract import TicketView
from bridge.core.model import (
    Cause,
    InvalidTransitionError,
    Observation,
    Side,
    Sides,
    State,
    Transition,
    apply,
    path,
)
from bridge.vendors.registry import SIDES, SUPEROFFICE, ZENDESK

A, S, P = State.ACTIVE, State.SOFT_DELETED, State.PURGED


@pytest.mark.parametrize(
    ("state", "transition", "reached"),
    [
        (A, Transition.SOFT_DELETE, S),
        (S, Transition.RESTORE, A),
        (S, Transition.PURGE, P),
    ],
)
def test_valid_transitions(state: State, transition: Transition, reached: State) -> None:
    assert apply(state, transition) is reached


@pytest.mark.parametrize(
    ("state", "transition"),
    [
        (A, Transition.RESTORE),
        (A, Transition.PURGE),  # a hard delete is two steps: soft delete, then purge
        (S, Transition.SOFT_DELETE),
        (P, Transition.SOFT_DELETE),
        (P, Transition.RESTORE),
        (P, Transition.PURGE),
    ],
)
def test_invalid_transitions_are_refused(state: State, transition: Transition) -> None:
    with pytest.raises(InvalidTransitionError, match=f"cannot {transition}"):
        apply(state, transition)


@pytest.mark.parametrize(
    ("start", "end", "steps"),
    [
        (A, A, ()),
        (A, S, (Transition.SOFT_DELETE,)),
        (A, P, (Transition.SOFT_DELETE, Transition.PURGE)),
        (S, A, (Transition.RESTORE,)),
        (S, P, (Transition.PURGE,)),
        (P, P, ()),
    ],
)
def test_paths(start: State, end: State, steps: tuple[Transition, ...]) -> None:
    assert path(start, end) == steps
    state = start
    for step in steps:
        state = apply(state, step)
    assert state is end


@pytest.mark.parametrize("end", [A, S])
def test_nothing_leaves_purged(end: State) -> None:
    with pytest.raises(InvalidTransitionError, match="terminal"):
        path(P, end)


def test_only_purge_is_irreversible() -> None:
    assert [t for t in Transition if t.irreversible] == [Transition.PURGE]


def test_sides_know_each_other() -> None:
    assert SIDES.other(SUPEROFFICE) == ZENDESK
    assert SIDES.other(ZENDESK) == SUPEROFFICE
    assert list(SIDES) == [SIDES.first, SIDES.second]
    assert (SIDES.index(SIDES.first), SIDES.index(SIDES.second)) == (0, 1)
    with pytest.raises(ValueError, match="not a side"):
        SIDES.other(Side("elsewhere"))
    with pytest.raises(ValueError, match="must differ"):
        Sides(SUPEROFFICE, SUPEROFFICE)


def test_observation_carries_the_audit_facts() -> None:
    seen = datetime(2026, 1, 2, tzinfo=UTC)
    observation = Observation(
        3, ZENDESK, 42, S, seen_at=seen, vendor_time=seen, actor_id=7, cause=Cause.USER
    )
    assert (observation.side, observation.ticket_id, observation.state) == (ZENDESK, 42, S)
    assert (observation.actor_id, observation.cause) == (7, Cause.USER)
    with pytest.raises(ValueError, match="positive"):
        Observation(3, ZENDESK, 0, S, seen_at=seen)


def test_causes_are_the_four_of_the_audit() -> None:
    assert {c.value for c in Cause} == {"user", "retention", "archive_retention", "bridge"}
    assert {c for c in Cause if c.by_retention} == {Cause.RETENTION, Cause.ARCHIVE_RETENTION}


def test_views_and_observations_compare_by_value_and_hold_no_dict() -> None:
    """Many are made per run: slotted, compared and hashed by their fields (`immutable`)."""
    seen = datetime(2026, 1, 2, tzinfo=UTC)
    one, two = (Observation(3, ZENDESK, 42, S, seen_at=seen) for _ in range(2))
    assert one == two
    assert hash(one) == hash(two)
    assert len({one, two}) == 1
    assert not hasattr(one, "__dict__")
    view = TicketView(42, S)
    assert view == TicketView(42, S)
    assert hash(view) == hash(TicketView(42, S))
    assert not hasattr(view, "__dict__")


def test_the_type_checker_refuses_a_change_to_a_view_or_an_observation(tmp_path: Path) -> None:
    """They are frozen for mypy (`bridge/core/immutable.py`), which bridge's CI runs."""
    snippet = tmp_path / "change.py"
    snippet.write_text(
        "from bridge.core.contract import TicketView\n"
        "from bridge.core.model import Observation\n\n\n"
        "def change(observation: Observation, view: TicketView) -> None:\n"
        "    observation.ticket_id = 1\n"
        "    view.state = view.state\n",
        encoding="utf-8",
    )
    report, _, status = mypy.api.run(
        [str(snippet), "--cache-dir", str(tmp_path / "cache"), "--follow-imports", "silent"]
    )
    assert status == 1
    assert report.count("is read-only") == 2, report
