"""Where a SuperOffice change read stands: a (lastChanged second, ticketId) position per
archive provider, and the pure rules that page through the archive from it.

Archive dates are whole seconds (reference §3.2, `docs/vendor-fidelity.md`
`so.archive.dates`), so many rows can share one `lastChanged`: a bulk import or a mass
delete gives 100,000 rows one second. A timestamp alone cannot say how far into that second
a read got; the ticket id can, since rows are ordered by `lastChanged,ticketId`.

What an exact position cannot know is a change made *after* the read into a second the read
has passed. Two kinds, two answers:

* **The second the read ran in** (a ticket changed again later in it, or a lower id changed
  in it): the cursor's `read` position never stands past the last second that was over, by
  the tenant's clock, when the read began (`OVER_MARGIN` before it), so the next read takes
  those seconds again. An idle run reads nothing it has seen: one empty page a provider.
* **A write committed late** (stamped with a second the read had passed, visible only
  after it): a second is *settled* once a read that began `change_overlap` after it has read
  it (`settled`). The rows between `settled` and `read` are read once more to settle them:
  with every run while they are few (`unsettled` at most a page: no extra call), and, when a
  bulk change made them many, once, by the first read that begins after they are all past
  `change_overlap` (`due`). So 100,000 rows changed in one second cost the run right after
  the first one nothing, and one more pass a minute later, not one per run.

The filters use documented operators only (`../shared/reference/superoffice-api.md` §3.1):
`afterTime` and `beforeTime` on dates (SuperOffice's own samples), `gt` on ints, joined by
`and`; no `or`, no `le`/`ge` (they fail on ints in SuperOffice's samples).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = [
    "BY_CHANGE",
    "BY_ID",
    "CURSOR_VERSION",
    "OVER_MARGIN",
    "ChangeCursor",
    "Key",
    "PageQuery",
    "Position",
    "ReadBounds",
    "Span",
    "filter_time",
    "next_position",
    "page_query",
    "row_key",
    "row_second",
    "whole_second",
]

#: the first word of a position cursor; a cursor without it is an old high-water mark
CURSOR_VERSION = "so3"
#: the version before `settled`/`read`: one position per provider, both settled
OLD_CURSOR_VERSION = "so2"
#: a read in `lastChanged` order (through whole seconds)
BY_CHANGE = "lastChanged,ticketId"
#: a read inside one second, in id order
BY_ID = "ticketId"
SECOND = timedelta(seconds=1)
#: how far before the tenant's time a second counts as over: an answer's `Date` is cut to
#: the second and written after its query ran, so the second before it may not have been
OVER_MARGIN = 2 * SECOND
#: where rows with no `lastChanged` (year 1, "empty") sort: before everything
EARLIEST = datetime(1, 1, 1, tzinfo=UTC)


def whole_second(moment: datetime) -> datetime:
    """`moment` in UTC, cut to the second (archive dates are whole seconds, cut not rounded)."""
    if moment.tzinfo is UTC and not moment.microsecond:
        return moment  # an archive date as read: already one
    return moment.astimezone(UTC).replace(microsecond=0)


def filter_time(moment: datetime) -> str:
    """The literal for `afterTime`/`beforeTime`: UTC, second resolution."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass(frozen=True, slots=True)
class Position:
    """Every row up to here has been read: rows of earlier seconds, and of `second` those
    up to `ticket_id` (None: the whole second)."""

    second: datetime
    ticket_id: int | None = None

    @property
    def key(self) -> tuple[datetime, float]:
        return (self.second, float("inf") if self.ticket_id is None else self.ticket_id)

    def encode(self) -> str:
        text = self.second.strftime("%Y-%m-%dT%H:%M:%SZ")
        return text if self.ticket_id is None else f"{text}/{self.ticket_id}"

    @classmethod
    def decode(cls, text: str) -> Position | None:
        """None for `-` (from the start); ValueError for anything unreadable."""
        if text == "-":
            return None
        when, _, ticket = text.partition("/")
        second = datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        return cls(second, int(ticket) if ticket else None)


def earlier(a: Position | None, b: Position | None) -> Position | None:
    """The earlier of two positions (None, the very start, is earliest)."""
    if a is None or b is None:
        return None
    return a if a.key <= b.key else b


def later(a: Position | None, b: Position | None) -> Position | None:
    """The later of two positions (None, the very start, is earliest)."""
    if a is None:
        return b
    if b is None:
        return a
    return a if a.key >= b.key else b


@dataclass(frozen=True, slots=True)
class ReadBounds:
    """Where a read that began at a given time may leave its positions, by the earlier of
    bridge's clock and the tenant's: `over` is the last second surely over then, `closed`
    the last second over by `change_overlap` (never later than `over`)."""

    over: Position
    closed: Position

    @classmethod
    def at(cls, now: datetime, overlap: timedelta) -> ReadBounds:
        over = Position(whole_second(now) - OVER_MARGIN)
        closed = Position(whole_second(now - overlap) - SECOND)
        return cls(over, closed if closed.key <= over.key else over)


@dataclass(frozen=True, slots=True)
class Span:
    """The rows after `after` (None: from the start) up to and including `upto`."""

    after: Position | None
    upto: Position

    def count(self, keys: Sequence[Key]) -> int:
        low = None if self.after is None else self.after.key
        high = self.upto.key
        return sum(1 for key in keys if (low is None or key > low) and key <= high)


@dataclass(frozen=True, slots=True)
class ChangeCursor:
    """The cursor stored between reads (both providers stand at the same positions: each
    read takes both to their ends, and only the last page moves the cursor).

    `settled`: every row up to here has been read by a read that began `change_overlap`
    after its second; `read`: every row up to here has been read; `unsettled`: how many
    rows were read between the two; `due`: set when those became too many to read again
    with every run, the position after which they are read again once, as soon as
    `closed` reaches it."""

    settled: Position | None
    read: Position | None
    unsettled: int = 0
    due: Position | None = None

    @property
    def first(self) -> bool:
        """Whether nothing has been read yet."""
        return self.read is None

    def settles(self, bounds: ReadBounds, *, each_run: int) -> bool:
        """Whether this read starts from `settled` (reading the unsettled rows again) rather
        than from `read`: while they are at most `each_run`, or once they are all closed."""
        if self.unsettled <= each_run or self.due is None:
            return True
        return self.due.key <= bounds.closed.key

    def start(self, settles: bool) -> Position | None:
        return self.settled if settles else self.read

    def after(
        self, bounds: ReadBounds, *, settles: bool, counted: int, each_run: int
    ) -> ChangeCursor:
        """The cursor a complete read leaves. `counted`: rows it read between the new
        `settled` and the new `read` (`counts`)."""
        read = later(self.read, bounds.over)
        if settles:
            settled, unsettled, due = later(self.settled, bounds.closed), counted, None
        else:
            settled, unsettled, due = self.settled, self.unsettled + counted, self.due
        if unsettled <= each_run:
            due = None
        elif due is None:  # too many to read with every run: once, when all are closed
            due = read
        return ChangeCursor(settled, read, unsettled, due)

    def counts(self, bounds: ReadBounds, *, settles: bool) -> Span:
        """Where the rows a read counts as unsettled lie: between the `settled` and `read`
        positions it will leave."""
        settled = later(self.settled, bounds.closed) if settles else self.settled
        return Span(settled, later(self.read, bounds.over) or bounds.over)

    def encode(self) -> str:
        parts = [CURSOR_VERSION, f"settled={_encode(self.settled)}", f"read={_encode(self.read)}"]
        parts += [f"unsettled={self.unsettled}", f"due={_encode(self.due)}"]
        return " ".join(parts)

    @classmethod
    def parse(cls, text: str | None, *, old_overlap: timedelta) -> ChangeCursor:
        """A stored cursor. One of the version before (a position per provider, both
        settled) starts at the earlier; an older one (a bare `lastChanged` mark) where that
        version's next read would have: `old_overlap` before the mark. Empty, or
        unreadable: from the start."""
        if not text:
            return cls(None, None)
        words = text.split()
        if words[0] not in (CURSOR_VERSION, OLD_CURSOR_VERSION):
            return cls._old(text, old_overlap)
        fields = dict(w.partition("=")[::2] for w in words[1:] if "=" in w)
        try:
            if words[0] == OLD_CURSOR_VERSION:
                both = earlier(
                    Position.decode(fields["Ticket"]), Position.decode(fields["RecycleTicket"])
                )
                return cls(both, both)
            settled = Position.decode(fields["settled"])
            read = Position.decode(fields["read"])
            unsettled = int(fields["unsettled"])
            due = Position.decode(fields["due"])
        except (KeyError, ValueError):
            return cls(None, None)
        if unsettled < 0 or (read is None and settled is not None):
            return cls(None, None)
        return cls(earlier(settled, read), read, unsettled, due)

    @classmethod
    def _old(cls, text: str, overlap: timedelta) -> ChangeCursor:
        mark = _parse_mark(text)
        if mark is None:
            return cls(None, None)
        start = Position(whole_second(mark - max(overlap, SECOND)))
        return cls(start, start)


def _encode(position: Position | None) -> str:
    return "-" if position is None else position.encode()


def _parse_mark(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class PageQuery:
    """The `$filter` (None: every row) and `$orderBy` of the next page from a position."""

    filter: str | None
    order_by: str


def page_query(at: Position | None) -> PageQuery:
    """From the start; after a whole second (`afterTime`); or inside one second, after an
    id: the second as `afterTime` the one before and `beforeTime` the one after (a
    superset of it even if the tenant compared fractions), in id order."""
    if at is None:
        return PageQuery(None, BY_CHANGE)
    if at.ticket_id is None:
        return PageQuery(f"lastChanged afterTime '{filter_time(at.second)}'", BY_CHANGE)
    return PageQuery(
        f"lastChanged afterTime '{filter_time(at.second - SECOND)}' and lastChanged "
        f"beforeTime '{filter_time(at.second + SECOND)}' and ticketId gt {at.ticket_id}",
        BY_ID,
    )


Key = tuple[datetime, int]


def row_second(last_changed: datetime | None) -> datetime:
    """The second a row's `lastChanged` sorts in (no date: before every other)."""
    return whole_second(last_changed) if last_changed else EARLIEST


def row_key(ticket_id: int, last_changed: datetime | None) -> Key:
    """A row's place in `lastChanged,ticketId` order."""
    return (row_second(last_changed), ticket_id)


def next_position(
    at: Position | None, keys: Sequence[Key], *, full: bool
) -> tuple[Position | None, bool]:
    """Where the read stands after a page of `keys` (in the order returned) read from
    `at`, and whether the provider is read to its end.

    * After a whole second: a short page ends the read. A full page spanning seconds
      stands at the end of the second before its last one, whose rows come again with the
      next page (that costs no call, and holds even if the tenant sorted a second's rows
      otherwise than by id). A full page of one second stands at its last id and goes on
      inside that second in id order (rows of one second sort by id: assumed, as archive
      dates are compared at whole seconds).
    * Inside a second: a short page finishes the second; a full one stands at its last id.
    """
    if at is not None and at.ticket_id is not None:
        if not full:
            return Position(at.second), False
        return Position(at.second, max([at.ticket_id, *(k[1] for k in keys)])), False
    if not full:
        newest = max((k[0] for k in keys), default=None)
        if newest is None:
            return at, True
        end = Position(newest)
        return (end if at is None or end.key > at.key else at), True
    last = keys[-1][0]
    before = [k[0] for k in keys if k[0] < last]
    if before:
        return Position(max(before)), False
    return Position(last, max(k[1] for k in keys)), False
