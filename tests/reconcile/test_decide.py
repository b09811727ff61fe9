"""The three-way decision: explicit rows, an exhaustive invariant sweep, and the doc's table."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bridge.core.decide import (
    BOTH_WAYS,
    MANUAL,
    ConflictPolicy,
    ConflictRule,
    Direction,
    Policy,
    SideState,
)
from bridge.core.decide import decide as decide_pair
from bridge.core.model import Cause, Decision, Observation, Outcome, Side, State, Transition, apply
from bridge.vendors.registry import SIDES, SUPEROFFICE, ZENDESK

A, D, P = State.ACTIVE, State.SOFT_DELETED, State.PURGED
SD, RE, PU = Transition.SOFT_DELETE, Transition.RESTORE, Transition.PURGE
SO, ZD = SUPEROFFICE, ZENDESK
T0 = datetime(2024, 1, 1, tzinfo=UTC)
DOC = Path(__file__).resolve().parents[2] / "docs" / "decision-table.md"


def decide(base: State | None, so: SideState, zd: SideState, policy: Policy) -> Decision:
    """The decision with SuperOffice's state and Zendesk's (the rows' order)."""
    return decide_pair(base, SIDES, {SO: so, ZD: zd}, policy)


def conflict(text: str) -> ConflictPolicy:
    return ConflictPolicy.parse(text, SIDES)


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


def side(state: State | None, hours: int | None = None, cause: Cause | None = None) -> SideState:
    return SideState(state, None if hours is None else at(hours), cause)


# --------------------------------------------------------------------------- explicit rows

# fmt: off
ROWS: list[tuple[str, State | None, SideState, SideState, Policy, Outcome, Side | None,
                 tuple[Transition, ...], State | None, str]] = [
    # id, base, superoffice, zendesk, policy, outcome, target, transitions, new_base, reason
    ("unknown-so", A, side(None), side(D), Policy(), Outcome.UNKNOWN, None, (), None,
     "superoffice state unknown"),
    ("unknown-zd", D, side(D), side(None), Policy(), Outcome.UNKNOWN, None, (), None,
     "zendesk state unknown"),
    ("unknown-both-no-base", None, side(None), side(None), Policy(), Outcome.UNKNOWN, None, (),
     None, "both states unknown"),
    ("agree-first-sight", None, side(D), side(D), Policy(), Outcome.AGREE, None, (), D,
     "in agreement"),
    ("agree-after-both-purged", D, side(P), side(P), Policy(), Outcome.AGREE, None, (), P,
     "in agreement"),
    ("divergence-no-base", None, side(A), side(P), Policy(), Outcome.DIVERGENCE, None, (), None,
     "no base: sides differ"),
    ("divergence-no-base-keep-active", None, side(A), side(D),
     Policy(conflict_policy=conflict("keep-active")), Outcome.DIVERGENCE, None, (), None,
     "no base: sides differ"),
    ("so-deleted-copied", A, side(D), side(A), Policy(), Outcome.APPLY, ZD, (SD,), D,
     "superoffice changed"),
    ("zd-restored-copied", D, side(D), side(A), Policy(), Outcome.APPLY, SO, (RE,), A,
     "zendesk changed"),
    ("zd-hard-delete-becomes-soft-delete-then-purge", A, side(A), side(P), Policy(),
     Outcome.APPLY, SO, (SD, PU), P, "zendesk changed"),
    ("zd-purge-of-soft-deleted", D, side(D), side(P), Policy(), Outcome.APPLY, SO, (PU,), P,
     "zendesk changed"),
    ("continuation-after-partial-copy", A, side(P), side(D), Policy(), Outcome.APPLY, ZD, (PU,),
     P, "superoffice changed; zendesk part-way"),
    ("restore-vs-purge-conflict", D, side(A), side(P), Policy(), Outcome.CONFLICT, None, (), None,
     "conflict: both changed"),
    ("target-purged-cannot-follow", P, side(P), side(A), Policy(), Outcome.CONFLICT, None, (),
     None, "conflict: zendesk left purged; superoffice is purged (terminal)"),
    ("both-left-purged", P, side(A), side(D), Policy(), Outcome.CONFLICT, None, (), None,
     "conflict: both left purged"),
    # direction
    ("direction-blocks-so-write", A, side(A), side(D),
     Policy(direction=Direction(SO)), Outcome.SKIP, SO, (), None,
     "direction: superoffice not written"),
    ("direction-allows-zd-write", A, side(D), side(A),
     Policy(direction=Direction(SO)), Outcome.APPLY, ZD, (SD,), D,
     "superoffice changed"),
    ("direction-blocks-zd-write", D, side(A), side(D),
     Policy(direction=Direction(ZD)), Outcome.SKIP, ZD, (), None,
     "direction: zendesk not written"),
    # purge policy
    ("purges-off-copies-soft-delete-only", A, side(P), side(A), Policy(propagate_purges=False),
     Outcome.APPLY, ZD, (SD,), D, "superoffice changed; purge not propagated (policy)"),
    ("purges-off-steady-state-is-skip", D, side(P), side(D), Policy(propagate_purges=False),
     Outcome.SKIP, ZD, (), None, "purge not propagated (policy)"),
    ("purges-off-partial-moves-base", A, side(D), side(P), Policy(propagate_purges=False),
     Outcome.SKIP, SO, (), D, "purge not propagated (policy)"),
    ("retention-purge-held-by-default", D, side(D), side(P, cause=Cause.RETENTION), Policy(),
     Outcome.SKIP, SO, (), None, "retention purge not propagated (policy)"),
    ("retention-purge-from-active-copies-soft-delete", A, side(P, cause=Cause.RETENTION),
     side(A), Policy(), Outcome.APPLY, ZD, (SD,), D,
     "superoffice changed; retention purge not propagated (policy)"),
    ("retention-purge-propagated-when-enabled", D, side(D), side(P, cause=Cause.RETENTION),
     Policy(propagate_retention_purges=True), Outcome.APPLY, SO, (PU,), P, "zendesk changed"),
    ("retention-on-but-purges-off", D, side(D), side(P, cause=Cause.RETENTION),
     Policy(propagate_purges=False, propagate_retention_purges=True), Outcome.SKIP, SO, (),
     None, "purge not propagated (policy)"),
    ("user-purge-propagated-while-retention-held", D, side(D), side(P, cause=Cause.USER),
     Policy(), Outcome.APPLY, SO, (PU,), P, "zendesk changed"),
    ("restore-after-held-purge-is-conflict", D, side(P, cause=Cause.RETENTION), side(A),
     Policy(), Outcome.CONFLICT, None, (), None, "conflict: both changed"),
    # conflict policies on restore (superoffice) vs purge (zendesk) and the reverse
    ("so-wins-cannot-unpurge", D, side(A), side(P),
     Policy(conflict_policy=conflict("superoffice-wins")), Outcome.CONFLICT, None, (), None,
     "conflict: superoffice-wins: zendesk is purged (terminal)"),
    ("zd-wins-purge-propagated", D, side(A), side(P),
     Policy(conflict_policy=conflict("zendesk-wins")), Outcome.APPLY, SO, (SD, PU), P,
     "conflict resolved: zendesk-wins"),
    ("so-wins-purge-propagated", D, side(P), side(A),
     Policy(conflict_policy=conflict("superoffice-wins")), Outcome.APPLY, ZD, (SD, PU), P,
     "conflict resolved: superoffice-wins"),
    ("so-wins-purges-off", D, side(P), side(A),
     Policy(conflict_policy=conflict("superoffice-wins"), propagate_purges=False),
     Outcome.APPLY, ZD, (SD,), D, "conflict resolved: superoffice-wins; purge not propagated "
     "(policy)"),
    ("so-wins-against-direction", D, side(P), side(A),
     Policy(conflict_policy=conflict("superoffice-wins"),
            direction=Direction(ZD)),
     Outcome.CONFLICT, None, (), None,
     "conflict: superoffice-wins would write zendesk against direction"),
    ("latest-wins-zendesk-later", D, side(A, 1), side(P, 2),
     Policy(conflict_policy=conflict("latest-wins")), Outcome.APPLY, SO, (SD, PU), P,
     "conflict resolved: latest-wins (zendesk later)"),
    ("latest-wins-superoffice-later-but-zd-purged", D, side(A, 3), side(P, 2),
     Policy(conflict_policy=conflict("latest-wins")), Outcome.CONFLICT, None, (), None,
     "conflict: latest-wins: zendesk is purged (terminal)"),
    ("latest-wins-tie", D, side(A, 2), side(P, 2),
     Policy(conflict_policy=conflict("latest-wins")), Outcome.CONFLICT, None, (), None,
     "conflict: latest-wins needs two different vendor times"),
    ("latest-wins-time-missing", D, side(A), side(P, 2),
     Policy(conflict_policy=conflict("latest-wins")), Outcome.CONFLICT, None, (), None,
     "conflict: latest-wins needs two different vendor times"),
    ("keep-active-other-purged", D, side(A), side(P),
     Policy(conflict_policy=conflict("keep-active")), Outcome.CONFLICT, None, (), None,
     "conflict: keep-active: zendesk is purged (terminal)"),
    ("keep-active-restores-soft-deleted", P, side(D), side(A),
     Policy(conflict_policy=conflict("keep-active")), Outcome.APPLY, SO, (RE,), A,
     "conflict resolved: keep-active"),
    ("keep-active-restores-zendesk", P, side(A), side(D),
     Policy(conflict_policy=conflict("keep-active")), Outcome.APPLY, ZD, (RE,), A,
     "conflict resolved: keep-active"),
    ("keep-active-restore-blocked-by-direction", P, side(A), side(D),
     Policy(conflict_policy=conflict("keep-active"),
            direction=Direction(ZD)),
     Outcome.CONFLICT, None, (), None,
     "conflict: keep-active would write zendesk against direction"),
]
# fmt: on


@pytest.mark.parametrize(
    ("base", "so", "zd", "policy", "outcome", "target", "transitions", "new_base", "reason"),
    [pytest.param(*row[1:], id=row[0]) for row in ROWS],
)
def test_explicit_row(
    base: State | None,
    so: SideState,
    zd: SideState,
    policy: Policy,
    outcome: Outcome,
    target: Side | None,
    transitions: tuple[Transition, ...],
    new_base: State | None,
    reason: str,
) -> None:
    assert decide(base, so, zd, policy) == Decision(outcome, target, transitions, new_base, reason)


def test_side_state_rejects_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        SideState(A, datetime(2024, 1, 1))


def test_side_state_from_observation() -> None:
    obs = Observation(1, ZD, 7, P, seen_at=at(5), vendor_time=at(4), cause=Cause.RETENTION)
    assert SideState.from_observation(obs) == SideState(P, at(4), Cause.RETENTION)


def test_decision_rejects_inconsistent_shapes() -> None:
    with pytest.raises(ValueError, match="inconsistent"):
        Decision(Outcome.CONFLICT, None, (SD,), None, "x")
    with pytest.raises(ValueError, match="inconsistent"):
        Decision(Outcome.APPLY, ZD, (), D, "x")
    with pytest.raises(ValueError, match="inconsistent"):
        Decision(Outcome.AGREE, None, (), None, "x")


def test_base_waits_for_confirmation_only_when_writing() -> None:
    apply_ = decide(A, side(D), side(A), Policy())
    assert apply_.base_waits_for_confirmation
    assert apply_.writes
    assert not apply_.purges
    skip = decide(A, side(D), side(P), Policy(propagate_purges=False))
    assert not skip.base_waits_for_confirmation
    assert skip.new_base is D
    assert decide(A, side(A), side(P), Policy()).purges


# --------------------------------------------------------------------------- exhaustive sweep

STATES: list[State | None] = [None, A, D, P]
POLICIES = [
    Policy(direction, rule, purges, retention)
    for direction, rule, purges, retention in itertools.product(
        (BOTH_WAYS, Direction(SO), Direction(ZD)),
        [conflict(text) for text in ConflictPolicy.choices(SIDES)],
        (True, False),
        (True, False),
    )
]
CAUSES = (Cause.USER, Cause.RETENTION)
TIMES = ((1, 2), (2, 1), (1, 1), (None, 1))


def inputs() -> Iterator[tuple[State | None, SideState, SideState]]:
    for base, s, z, (sc, zc), (st, zt) in itertools.product(
        STATES, STATES, STATES, itertools.product(CAUSES, CAUSES), TIMES
    ):
        yield base, side(s, st, sc), side(z, zt, zc)


def held(source: SideState, policy: Policy) -> bool:
    """Whether policy holds back a purge coming from `source` (the test's own reading)."""
    retention = source.cause is Cause.RETENTION
    return not policy.propagate_purges or (retention and not policy.propagate_retention_purges)


def run_all(target_state: State, transitions: tuple[Transition, ...]) -> State:
    state = target_state
    for t in transitions:
        state = apply(state, t)  # raises on anything the model forbids
    return state


def check(base: State | None, so: SideState, zd: SideState, policy: Policy) -> Decision:
    d = decide(base, so, zd, policy)
    sides = {SO: so, ZD: zd}
    s, z = so.state, zd.state

    assert (d.outcome is Outcome.UNKNOWN) == (s is None or z is None)
    if d.outcome is Outcome.UNKNOWN:
        return d
    assert s is not None
    assert z is not None
    if base is None:  # nothing is ever acted on without a base
        assert d.outcome in {Outcome.AGREE, Outcome.DIVERGENCE}
    if s == z:
        assert d.outcome is Outcome.AGREE
    if d.outcome is Outcome.AGREE:
        assert d.new_base == s == z
    if d.outcome in {Outcome.CONFLICT, Outcome.DIVERGENCE}:
        assert (d.target, d.transitions, d.new_base) == (None, (), None)
        assert d.reason.startswith("conflict" if d.outcome is Outcome.CONFLICT else "no base")

    if d.outcome is Outcome.SKIP:
        assert d.target is not None
        assert d.transitions == ()
        source = sides[SIDES.other(d.target)]
        if d.reason.startswith("direction"):
            assert not policy.direction.allows_writing(d.target)
            assert d.new_base is None
        else:
            assert d.reason.endswith("purge not propagated (policy)")
            assert held(source, policy)
            assert (source.state, sides[d.target].state) == (P, D)
            assert d.new_base == (None if base is D else D)

    if d.outcome is Outcome.APPLY:
        assert base is not None
        assert d.target is not None
        assert d.new_base is not None
        target, source = sides[d.target], sides[SIDES.other(d.target)]
        assert target.state is not None
        assert source.state is not None
        assert policy.direction.allows_writing(d.target)
        assert target.state is not P  # nothing leaves purged
        assert run_all(target.state, d.transitions) == d.new_base
        if d.purges:
            assert not held(source, policy)
            assert target.state is D or d.transitions[:1] == (SD,)
        if d.new_base == source.state:
            assert not d.reason.endswith("(policy)")
        else:  # purge dropped: the target stops at soft_deleted
            assert (source.state, d.new_base) == (P, D)
            assert held(source, policy)
        if d.reason.startswith("conflict resolved"):  # the winner is the source
            rule = policy.conflict_policy
            if rule.rule is ConflictRule.LATEST_WINS:
                assert source.vendor_time is not None
                assert target.vendor_time is not None
                assert source.vendor_time > target.vendor_time
            elif rule.rule is ConflictRule.KEEP_ACTIVE:
                assert (source.state, d.new_base) == (A, A)
            else:
                assert rule.winner is not None
                assert str(rule) == f"{SIDES.other(d.target)}-wins"
        if policy.conflict_policy == MANUAL:
            # Manual never overwrites a side's own change: the target is at base or part-way.
            assert target.state == base or (base, target.state, source.state) == (A, D, P)
    return d


def after_write(state: State) -> SideState:
    """The target as the next run reads it once bridge's write landed."""
    return side(state, 9, Cause.BRIDGE)


def check_convergence(
    base: State, so: SideState, zd: SideState, policy: Policy, d: Decision
) -> None:
    """Crash anywhere in an APPLY, or finish it: the next runs never conflict or double-write."""
    assert d.target is not None
    assert d.new_base is not None
    sides = {SO: so, ZD: zd}
    state = sides[d.target].state
    assert state is not None
    for done in range(1, len(d.transitions) + 1):
        state = apply(state, d.transitions[done - 1])
        sides[d.target] = after_write(state)
        # Killed before the base was recorded: the rest of the plan, and only that.
        again = decide(base, sides[SO], sides[ZD], policy)
        rest = d.transitions[done:]
        if rest:
            assert (again.outcome, again.target, again.transitions, again.new_base) == (
                Outcome.APPLY,
                d.target,
                rest,
                d.new_base,
            )
        else:
            assert again.outcome in {Outcome.AGREE, Outcome.SKIP}
            assert again.new_base in {d.new_base, None}
    # Confirmed and recorded: steady state, on this run and the next.
    settled = decide(d.new_base, sides[SO], sides[ZD], policy)
    assert settled.outcome in {Outcome.AGREE, Outcome.SKIP}
    assert settled.new_base in {d.new_base, None}
    if settled.outcome is Outcome.SKIP:
        assert decide(d.new_base, sides[SO], sides[ZD], policy).outcome is Outcome.SKIP


SWAP = {"superoffice": "zendesk", "zendesk": "superoffice"}


def mirror_text(text: str) -> str:
    return re.sub("superoffice|zendesk", lambda m: SWAP[m.group(0)], text)


def mirror_policy(policy: Policy) -> Policy:
    return replace(
        policy,
        direction=Direction.parse(mirror_text(policy.direction.label(SIDES)), SIDES),
        conflict_policy=conflict(mirror_text(str(policy.conflict_policy))),
    )


@pytest.mark.parametrize(
    "policy",
    POLICIES,
    ids=[
        f"{p.direction.label(SIDES)}-{p.conflict_policy}-purges{int(p.propagate_purges)}"
        f"-retention{int(p.propagate_retention_purges)}"
        for p in POLICIES
    ],
)
def test_every_combination(policy: Policy) -> None:
    seen: set[Outcome] = set()
    for base, so, zd in inputs():
        d = check(base, so, zd, policy)
        seen.add(d.outcome)
        if d.outcome is Outcome.APPLY:
            assert base is not None
            check_convergence(base, so, zd, policy, d)
        # The same question asked with the sides swapped gets the mirrored answer.
        m = decide(base, zd, so, mirror_policy(policy))
        assert m.outcome is d.outcome
        assert m.target == (None if d.target is None else SIDES.other(d.target))
        assert (m.transitions, m.new_base) == (d.transitions, d.new_base)
        assert m.reason == mirror_text(d.reason)
    # The sweep reaches every kind of answer under every policy except the ones it cannot:
    expected = {Outcome.UNKNOWN, Outcome.AGREE, Outcome.DIVERGENCE, Outcome.APPLY, Outcome.CONFLICT}
    every_purge_copied = policy.propagate_purges and policy.propagate_retention_purges
    if policy.direction != BOTH_WAYS or not every_purge_copied:
        expected.add(Outcome.SKIP)
    assert seen == expected


def test_the_order_of_the_sides_changes_no_decision() -> None:
    """The core knows two sides, not which comes first: listing them the other way round
    gives every decision unchanged (the reasons name sides, never positions)."""
    swapped = type(SIDES)(SIDES.second, SIDES.first)
    for policy in POLICIES:
        for base, so, zd in inputs():
            states = {SO: so, ZD: zd}
            assert decide_pair(base, swapped, states, policy) == decide_pair(
                base, SIDES, states, policy
            )


def test_policy_texts_round_trip() -> None:
    for text in Direction.choices(SIDES):
        assert Direction.parse(text, SIDES).label(SIDES) == text
    for text in ConflictPolicy.choices(SIDES):
        assert str(conflict(text)) == text
    with pytest.raises(ValueError, match="unknown direction"):
        Direction.parse("sideways", SIDES)
    with pytest.raises(ValueError, match="unknown conflict policy"):
        conflict("wins")


def test_sweep_covers_the_brief_dimensions() -> None:
    assert len(POLICIES) == 5 * 3 * 2 * 2
    combos = {(b, so.state, zd.state) for b, so, zd in inputs()}
    assert len(combos) == 4 * 4 * 4


# --------------------------------------------------------------------------- the doc's table

# Cell syntax (explained in the doc): a side is `?` (unknown) or `state`, optionally followed
# by `(retention)` or `(user)` and by `@N` (vendor time, N hours after a fixed origin).
_SIDE = re.compile(
    r"^(?P<state>active|soft_deleted|purged)(?: \((?P<cause>\w+)\))?(?: @(?P<h>\d+))?$"
)
_NONE = "—"


def parse_side(cell: str) -> SideState:
    if cell == "?":
        return SideState.unknown()
    m = _SIDE.match(cell)
    assert m, f"bad side cell {cell!r}"
    cause = Cause(m["cause"]) if m["cause"] else None
    return side(State(m["state"]), int(m["h"]) if m["h"] else None, cause)


def parse_policy(cell: str) -> Policy:
    policy = Policy()
    if cell == "default":
        return policy
    for item in cell.split(", "):
        key, _, value = item.partition("=")
        if key == "conflict":
            policy = replace(policy, conflict_policy=conflict(value))
        elif key == "direction":
            policy = replace(policy, direction=Direction.parse(value, SIDES))
        elif key == "purges":
            policy = replace(policy, propagate_purges={"on": True, "off": False}[value])
        elif key == "retention-purges":
            policy = replace(policy, propagate_retention_purges={"on": True, "off": False}[value])
        else:
            raise AssertionError(f"bad policy cell {cell!r}")
    return policy


def format_decision(d: Decision) -> dict[str, str]:
    return {
        "outcome": str(d.outcome),
        # SKIP names the side it would have written, in parentheses.
        "writes to": _NONE if d.target is None else str(d.target) if d.writes else f"({d.target})",
        "transitions": ", ".join(d.transitions) or _NONE,
        "base after": str(d.new_base) if d.new_base is not None else "unchanged",
        "reason": d.reason,
    }


def doc_rows() -> Iterator[tuple[int, dict[str, str]]]:
    """Every row of every table in the doc whose header starts with `base`."""
    header: list[str] | None = None
    for number, line in enumerate(DOC.read_text(encoding="utf-8").splitlines(), 1):
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells if cells[0] == "base" else []
        elif header and not set(cells[0]) <= {"-", ":"}:
            yield number, dict(zip(header, cells, strict=True))


def test_doc_table_matches_decide() -> None:
    rows = list(doc_rows())
    assert len(rows) > 60
    for number, row in rows:
        base = None if row["base"] == _NONE else State(row["base"])
        d = decide(
            base,
            parse_side(row["superoffice"]),
            parse_side(row["zendesk"]),
            parse_policy(row.get("policy", "default")),
        )
        expected = {
            k: row[k] for k in ("outcome", "writes to", "transitions", "base after", "reason")
        }
        assert format_decision(d) == expected, f"docs/decision-table.md line {number}"


def test_doc_covers_every_known_combination_under_default_policy() -> None:
    covered = {
        (row["base"], row["superoffice"], row["zendesk"])
        for _, row in doc_rows()
        if row.get("policy", "default") == "default"
    }
    for base, s, z in itertools.product([None, A, D, P], [A, D, P], [A, D, P]):
        assert (_NONE if base is None else str(base), str(s), str(z)) in covered
