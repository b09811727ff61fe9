"""The normalised deletion-state model shared by every part of bridge.

Pure: no I/O, no clock. Both vendors are mapped onto these few values so that the
reconciler can reason about them without knowing which API it talks to.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NewType

from bridge.core.immutable import immutable

__all__ = [
    "READS",
    "Cause",
    "Decision",
    "InvalidTransitionError",
    "Observation",
    "Outcome",
    "Side",
    "Sides",
    "State",
    "Transition",
    "apply",
    "id_column",
    "path",
]


#: The name of one side of a pair, as the vendor standing there declares it. The core knows
#: only that a pair has two sides (`Sides`); which vendor stands on each is the vendor
#: registry's business (`bridge.vendors.registry`).
Side = NewType("Side", str)


def id_column(side: Side) -> str:
    """What link files, reports and the CLI call a side's ticket id: `<side>_id`."""
    return f"{side}_id"


@dataclass(frozen=True, slots=True)
class Sides:
    """The two sides of every pair, in the ledger's order (first, second)."""

    first: Side
    second: Side

    def __post_init__(self) -> None:
        if self.first == self.second:
            raise ValueError(f"the two sides of a pair must differ, got {self.first!r} twice")

    def __iter__(self) -> Iterator[Side]:
        yield self.first
        yield self.second

    def __contains__(self, side: object) -> bool:
        return side == self.first or side == self.second

    def other(self, side: Side) -> Side:
        """The side across from `side`."""
        if side == self.first:
            return self.second
        if side == self.second:
            return self.first
        raise ValueError(f"{side!r} is not a side of {self.first}/{self.second}")

    def index(self, side: Side) -> int:
        """0 for the first side, 1 for the second (the ledger's column order)."""
        return 1 if self.other(side) == self.first else 0


class State(StrEnum):
    ACTIVE = "active"
    SOFT_DELETED = "soft_deleted"
    PURGED = "purged"


class Transition(StrEnum):
    SOFT_DELETE = "soft_delete"
    RESTORE = "restore"
    PURGE = "purge"

    @property
    def irreversible(self) -> bool:
        return self is Transition.PURGE


class Cause(StrEnum):
    """Why a transition happened: an agent, a vendor retention job, or bridge itself.

    `archive_retention` is a vendor's retention of its archive (a deletion schedule
    removing archived tickets): a purge by retention like `retention` (the grace period
    of a soft delete ending), told apart in the ledger and the report.
    """

    USER = "user"
    RETENTION = "retention"
    BRIDGE = "bridge"
    ARCHIVE_RETENTION = "archive_retention"

    @property
    def by_retention(self) -> bool:
        """A vendor's own retention did it (what `propagate_retention_purges` governs)."""
        return self in (Cause.RETENTION, Cause.ARCHIVE_RETENTION)


class InvalidTransitionError(ValueError):
    """A transition that the state model forbids (anything out of `purged`)."""


_EDGES: dict[tuple[State, Transition], State] = {
    (State.ACTIVE, Transition.SOFT_DELETE): State.SOFT_DELETED,
    (State.SOFT_DELETED, Transition.RESTORE): State.ACTIVE,
    (State.SOFT_DELETED, Transition.PURGE): State.PURGED,
}


def apply(state: State, transition: Transition) -> State:
    """The state reached by `transition` from `state`; raises if the model forbids it."""
    try:
        return _EDGES[(state, transition)]
    except KeyError:
        raise InvalidTransitionError(f"cannot {transition} a ticket that is {state}") from None


def path(start: State, end: State) -> tuple[Transition, ...]:
    """The transitions that take a ticket from `start` to `end`, in order.

    `active → purged` is a hard delete seen on one side; on the other side it becomes a
    soft delete followed by a purge. Nothing leaves `purged`: it is terminal.
    """
    if start == end:
        return ()
    if start is State.PURGED:
        raise InvalidTransitionError(f"cannot go from {start} to {end}: purged is terminal")
    if start is State.ACTIVE and end is State.PURGED:
        return (Transition.SOFT_DELETE, Transition.PURGE)
    for (source, transition), target in _EDGES.items():
        if source == start and target == end:
            return (transition,)
    raise InvalidTransitionError(f"no transition from {start} to {end}")  # pragma: no cover


@immutable
class Observation:
    """What one side said about one linked ticket at one moment: what the run records.

    `vendor_time` is when the vendor says the state began (its deletion or change time);
    `seen_at` is when bridge read it. `actor_id` and `cause` are filled when the vendor
    tells us (`cause` is None for a first sighting); `status_id` is the vendor's own status
    while active, where a faithful restore needs it. `read` is which read showed it
    (`READS`): the evidence an audit names for the change.
    """

    link_id: int
    side: Side
    ticket_id: int
    state: State
    seen_at: datetime
    vendor_time: datetime | None = None
    actor_id: int | None = None
    cause: Cause | None = None
    status_id: int | None = None
    read: str | None = None

    def __post_init__(self) -> None:
        if self.ticket_id <= 0:
            raise ValueError(f"ticket id must be positive, got {self.ticket_id}")


#: the reads an observation can come from: the side's change stream, a lookup by id (of
#: links never read, of a write's target to confirm it), the vanished-ticket sweep
READS = ("changes", "lookup", "sweep")


class Outcome(StrEnum):
    AGREE = "agree"
    APPLY = "apply"
    CONFLICT = "conflict"
    DIVERGENCE = "divergence"
    UNKNOWN = "unknown"
    SKIP = "skip"  # a change seen but not copied: direction or purge policy (see reason)


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do for one link.

    `target` is the side written by APPLY, or the side that would have been written for SKIP;
    None otherwise. `transitions` are for the target, in order, starting from its current
    state; empty unless APPLY.

    `new_base` is the base to record, None meaning "leave the base as it is". When
    `transitions` is empty it is recorded at once (AGREE, some SKIPs); when not, it is the
    base *once applied*: record it only after every transition is confirmed on the target
    (`base_waits_for_confirmation`). Until then the old base stays, and the next run, seeing
    the target part-way, plans the rest.
    """

    outcome: Outcome
    target: Side | None
    transitions: tuple[Transition, ...]
    new_base: State | None
    reason: str

    def __post_init__(self) -> None:
        has_target = self.target is not None
        if self.outcome is Outcome.APPLY:
            ok = has_target and bool(self.transitions) and self.new_base is not None
        elif self.outcome is Outcome.SKIP:
            ok = has_target and not self.transitions
        elif self.outcome is Outcome.AGREE:
            ok = not has_target and not self.transitions and self.new_base is not None
        else:
            ok = not has_target and not self.transitions and self.new_base is None
        if not ok:
            raise ValueError(f"inconsistent decision: {self!r}")

    @property
    def writes(self) -> bool:
        return self.outcome is Outcome.APPLY

    @property
    def purges(self) -> bool:
        return Transition.PURGE in self.transitions

    @property
    def base_waits_for_confirmation(self) -> bool:
        """True when `new_base` may be recorded only after the transitions are confirmed."""
        return bool(self.transitions)
