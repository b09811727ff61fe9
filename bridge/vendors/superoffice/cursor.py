"""Where a SuperOffice change read stands: a (lastChanged second, ticketId) position per
archive provider, and the pure rules that page through the archive from it.

Archive dates are whole seconds (reference §3.2, `docs/vendor-fidelity.md`
`so.archive.dates`), so many rows can share one `lastChanged`: a bulk import or a mass
delete gives 100,000 rows one second. A timestamp alone cannot say how far into that second
a read got; the ticket id can, since rows are ordered by `lastChanged,ticketId`.

What an exact position cannot know is a change made *after* the read into a second the read
has passed (a ticket changed again in that same second, or a lower id changed in it later).
That only happens to a second that was not yet over on the tenant's clock when the read
began: such a second is *open*. A read starts from its cursor, and the cursor it leaves is
never later than the last second that was closed when it began (`close`), so the next read
re-reads the open seconds, and only them; a closed second is never read twice.

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
    "ChangeCursor",
    "Key",
    "PageQuery",
    "Position",
    "close",
    "filter_time",
    "next_position",
    "page_query",
    "row_key",
    "row_second",
    "whole_second",
]

#: the first word of a position cursor; a cursor without it is an old high-water mark
CURSOR_VERSION = "so2"
#: a read in `lastChanged` order (through whole seconds)
BY_CHANGE = "lastChanged,ticketId"
#: a read inside one second, in id order
BY_ID = "ticketId"
SECOND = timedelta(seconds=1)
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


def close(position: Position | None, closed: Position) -> Position | None:
    """`position`, but never past the last closed second: what a cursor may keep."""
    return earlier(position, closed)


@dataclass(frozen=True, slots=True)
class ChangeCursor:
    """The cursor stored between reads: one position per provider."""

    ticket: Position | None
    recycle: Position | None

    @property
    def first(self) -> bool:
        """Whether nothing has been read yet."""
        return self.ticket is None and self.recycle is None

    def encode(self) -> str:
        parts = [CURSOR_VERSION, f"Ticket={_encode(self.ticket)}"]
        parts.append(f"RecycleTicket={_encode(self.recycle)}")
        return " ".join(parts)

    @classmethod
    def parse(cls, text: str | None, *, old_overlap: timedelta) -> ChangeCursor:
        """A stored cursor. An old one (a bare `lastChanged` mark, before positions) starts
        both providers where that version's next read would have: `old_overlap` before
        the mark. Empty, or unreadable: from the start."""
        if not text:
            return cls(None, None)
        words = text.split()
        if words[0] != CURSOR_VERSION:
            return cls._old(text, old_overlap)
        fields = dict(w.partition("=")[::2] for w in words[1:] if "=" in w)
        try:
            ticket = Position.decode(fields["Ticket"])
            recycle = Position.decode(fields["RecycleTicket"])
        except (KeyError, ValueError):
            return cls(None, None)
        return cls(ticket, recycle)

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
