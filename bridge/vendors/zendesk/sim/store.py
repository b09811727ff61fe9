"""The Zendesk simulator's ticket store: tickets, their deletion state, and the indexes.

No HTTP here. Every read the simulator serves is answered from an index, so that a page
costs the page, not the tenant: live lookups by id and external_id are dicts; the deleted
list (by id and by deletion time), the listed tickets (by id) and the incremental export
stream (by `(generated_timestamp, id)`) are `SortedKeys`, kept in chunks so that a change
never moves a whole index."""

from __future__ import annotations

import base64
import binascii
import itertools
import json
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from bridge.sandbox import iso_z

__all__ = [
    "LIVE_STATUSES",
    "SortedKeys",
    "Ticket",
    "TicketStore",
    "decode_cursor",
    "encode_cursor",
]

LIVE_STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
TicketState = Literal["active", "deleted", "purged"]
Key = tuple[Any, ...]


@dataclass(slots=True)
class Ticket:
    """One simulated ticket. `state` is the sim's truth; `status` is the pre-delete status."""

    id: int
    subject: str
    description: str
    status: str
    created_at: datetime
    updated_at: datetime
    generated_timestamp: int
    external_id: str | None = None
    requester_id: int = 1
    submitter_id: int = 1
    assignee_id: int | None = None
    priority: str | None = None
    type: str | None = None
    tags: list[str] = field(default_factory=list)
    state: TicketState = "active"
    deleted_at: datetime | None = None
    deleted_by: tuple[int, str] | None = None
    delete_seq: int = 0
    merged_into: int | None = None
    #: "user" (purged on request), "retention" (scrubbed), "archive_admin" (an archived
    #: ticket deleted by a person) or "archive_schedule" (by a deletion schedule)
    purge_cause: str | None = None
    #: when the ticket was closed (archiving counts from here), and whether it is archived
    closed_at: datetime | None = None
    archived: bool = False


class SortedKeys:
    """Sorted unique tuples (each ending with the ticket id), kept in chunks of about
    `CHUNK`: adding or removing one costs O(log n + CHUNK), never a move of the whole
    index, and a page is read from its position without copying the rest."""

    CHUNK = 1000

    def __init__(self, ordered: Iterable[Key] = ()) -> None:
        """`ordered`: keys already sorted ascending (a one-off index built on demand)."""
        items = list(ordered)
        size = self.CHUNK
        self._chunks: list[list[Key]] = [items[i : i + size] for i in range(0, len(items), size)]
        self._maxes: list[Key] = [chunk[-1] for chunk in self._chunks]
        self._len = len(items)

    def add(self, key: Key) -> None:
        chunks, maxes = self._chunks, self._maxes
        if not chunks:
            chunks.append([key])
            maxes.append(key)
        elif maxes[-1] < key:  # the common case: time moves forward
            chunks[-1].append(key)
            maxes[-1] = key
            self._split(len(chunks) - 1)
        else:
            index = bisect_left(maxes, key)
            insort(chunks[index], key)
            self._split(index)
        self._len += 1

    def remove(self, key: Key) -> None:
        index = bisect_left(self._maxes, key)
        if index == len(self._maxes):
            return
        chunk = self._chunks[index]
        at = bisect_left(chunk, key)
        if at == len(chunk) or chunk[at] != key:
            return
        del chunk[at]
        self._len -= 1
        if chunk:
            self._maxes[index] = chunk[-1]
        else:
            del self._chunks[index]
            del self._maxes[index]

    def _split(self, index: int) -> None:
        chunk = self._chunks[index]
        if len(chunk) <= 2 * self.CHUNK:
            return
        half = len(chunk) // 2
        self._chunks[index : index + 1] = [chunk[:half], chunk[half:]]
        self._maxes[index : index + 1] = [chunk[half - 1], chunk[-1]]

    def rank(self, key: Key, *, right: bool = False) -> int:
        """How many keys sort before `key` (`right`: at or before it): bisect's answer."""
        find = bisect_right if right else bisect_left
        index = find(self._maxes, key)
        if index == len(self._maxes):
            return self._len
        before = sum(len(chunk) for chunk in self._chunks[:index])
        return before + find(self._chunks[index], key)

    def slice(self, start: int, stop: int) -> list[Key]:
        """The keys at positions `start` to `stop` (ascending, clamped)."""
        return list(itertools.islice(self.between(start, stop), max(0, stop - start)))

    def between(self, start: int, stop: int, *, descending: bool = False) -> Iterator[Key]:
        """Lazily, the keys at positions `start` to `stop`, in either direction."""
        start, stop = max(0, start), min(self._len, stop)
        if start >= stop:
            return iter(())
        if descending:
            return itertools.islice(self._descending_from(stop), stop - start)
        return itertools.islice(self._ascending_from(start), stop - start)

    def _ascending_from(self, position: int) -> Iterator[Key]:
        for chunk in self._chunks:
            if position >= len(chunk):
                position -= len(chunk)
                continue
            yield from chunk[position:] if position else chunk
            position = 0

    def _descending_from(self, stop: int) -> Iterator[Key]:
        """Keys before position `stop`, newest first."""
        skip = self._len - stop
        for chunk in reversed(self._chunks):
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            yield from reversed(chunk[: len(chunk) - skip])
            skip = 0

    def __iter__(self) -> Iterator[Key]:
        return itertools.chain.from_iterable(self._chunks)

    def __len__(self) -> int:
        return self._len

    def clear(self) -> None:
        self._chunks.clear()
        self._maxes.clear()
        self._len = 0


def encode_cursor(key: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> Key:
    """Inverse of `encode_cursor`; ValueError on anything that is not one of ours."""
    try:
        padded = text + "=" * (-len(text) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("invalid cursor") from None
    if not isinstance(value, list) or not value:
        raise ValueError("invalid cursor")
    return tuple(value)


def export_cursor(key: tuple[int, int]) -> str:
    """Zendesk's export cursor format (recorded: base64 of `"1576613539.0||467|"`)."""
    return base64.b64encode(f"{key[0]}.0||{key[1]}|".encode()).decode()


def parse_export_cursor(text: str) -> tuple[int, int]:
    try:
        raw = base64.b64decode(text.encode(), validate=True).decode()
        stamp, _, rest = raw.partition("||")
        return int(float(stamp)), int(rest.strip("|"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("invalid cursor") from None


class TicketStore:
    """All tickets (live, soft-deleted and purged) with the indexes the endpoints need."""

    def __init__(self, first_id: int = 1) -> None:
        self.first_id = first_id
        self.next_id = first_id
        self.tickets: dict[int, Ticket] = {}
        self.by_external: dict[str, dict[int, None]] = {}
        self.deleted_by_id = SortedKeys()  # (id,)
        self.deleted_by_time = SortedKeys()  # (deleted_at ts, seq, id)
        self.stream = SortedKeys()  # (generated_timestamp, id)
        self.archived_ids: dict[int, None] = {}  # archived tickets, in archiving order
        #: what `/tickets` lists: live tickets not archived, by id
        self.listed_ids = SortedKeys()  # (id,)
        #: called when a ticket becomes closed (the simulator schedules its archiving)
        self.on_close: Callable[[Ticket], None] | None = None
        self._delete_seq = 0

    # ---- creation and lookup ---------------------------------------------------------------

    def create(
        self,
        *,
        now: datetime,
        subject: str = "",
        description: str = "",
        status: str = "new",
        external_id: str | None = None,
        created_at: datetime | None = None,
        updated_at: datetime | None = None,
        requester_id: int = 1,
        submitter_id: int | None = None,
        assignee_id: int | None = None,
        priority: str | None = None,
        type_: str | None = None,
        tags: Iterable[str] = (),
    ) -> Ticket:
        ticket = Ticket(
            id=self.next_id,
            subject=subject,
            description=description,
            status=status,
            created_at=created_at or now,
            updated_at=updated_at or created_at or now,
            generated_timestamp=int(now.timestamp()),
            external_id=external_id,
            requester_id=requester_id,
            submitter_id=submitter_id if submitter_id is not None else requester_id,
            assignee_id=assignee_id,
            priority=priority,
            type=type_,
            tags=list(tags),
        )
        self.next_id += 1
        self.tickets[ticket.id] = ticket
        if external_id is not None:
            self.by_external.setdefault(external_id, {})[ticket.id] = None
        self.stream.add((ticket.generated_timestamp, ticket.id))
        self.listed_ids.add((ticket.id,))
        self._note_status(ticket, ticket.updated_at)
        return ticket

    def live(self, ticket_id: int) -> Ticket | None:
        ticket = self.tickets.get(ticket_id)
        return ticket if ticket is not None and ticket.state == "active" else None

    def soft_deleted(self, ticket_id: int) -> Ticket | None:
        ticket = self.tickets.get(ticket_id)
        return ticket if ticket is not None and ticket.state == "deleted" else None

    def listed(self, ticket_id: int) -> Ticket | None:
        """A live ticket that is not archived: what `/tickets` lists show."""
        ticket = self.live(ticket_id)
        return ticket if ticket is not None and not ticket.archived else None

    def live_by_external(self, external_id: str) -> list[Ticket]:
        """Live tickets with this external id, archived ones left out (a `/tickets` list)."""
        ids = self.by_external.get(external_id, {})
        return [t for t in (self.tickets[i] for i in ids) if t.state == "active" and not t.archived]

    # ---- changes (each bumps generated_timestamp) ------------------------------------------

    def touch(self, ticket: Ticket, at: datetime, *, updated: bool = True) -> None:
        """Move the ticket to the end of the export stream (and bump updated_at)."""
        self.stream.remove((ticket.generated_timestamp, ticket.id))
        ticket.generated_timestamp = max(ticket.generated_timestamp, int(at.timestamp()))
        self.stream.add((ticket.generated_timestamp, ticket.id))
        if updated:
            ticket.updated_at = max(ticket.updated_at, at)

    def soft_delete(self, ticket: Ticket, at: datetime, actor: tuple[int, str]) -> None:
        self.listed_ids.remove((ticket.id,))
        ticket.state = "deleted"
        ticket.deleted_at = at
        ticket.deleted_by = actor
        self._delete_seq += 1
        ticket.delete_seq = self._delete_seq
        self.deleted_by_id.add((ticket.id,))
        self.deleted_by_time.add(self._time_key(ticket))
        self.touch(ticket, at)

    def restore(self, ticket: Ticket, at: datetime) -> None:
        self._unlist_deleted(ticket)
        ticket.state = "active"
        ticket.deleted_at = None
        ticket.deleted_by = None
        if not ticket.archived:
            self.listed_ids.add((ticket.id,))
        self.touch(ticket, at)
        if ticket.closed_at is not None and self.on_close is not None:
            self.on_close(ticket)  # its archiving, skipped while deleted, is due again

    def purge(self, ticket: Ticket, at: datetime, cause: str) -> None:
        """Permanent deletion (on request or by the 30-day scrub): the record turns SCRUBBED."""
        if ticket.state == "deleted":
            self._unlist_deleted(ticket)
        self.listed_ids.remove((ticket.id,))
        ticket.state = "purged"
        ticket.purge_cause = cause
        if ticket.external_id is not None:
            self.by_external.get(ticket.external_id, {}).pop(ticket.id, None)
        self.touch(ticket, at, updated=False)

    def archive(self, ticket: Ticket) -> None:
        """Move a closed ticket to the archive: still shown by id, left out of lists."""
        ticket.archived = True
        self.archived_ids[ticket.id] = None
        self.listed_ids.remove((ticket.id,))

    def purge_archived(self, ticket: Ticket, at: datetime, cause: str, *, in_export: bool) -> None:
        """An archived ticket deleted: gone at once, never in the deleted list. Unless the
        export is to show a SCRUBBED row for it, it leaves the export stream too."""
        self.archived_ids.pop(ticket.id, None)
        self.listed_ids.remove((ticket.id,))
        ticket.state = "purged"
        ticket.purge_cause = cause
        ticket.deleted_at = at
        if ticket.external_id is not None:
            self.by_external.get(ticket.external_id, {}).pop(ticket.id, None)
        if in_export:
            self.touch(ticket, at, updated=False)
        else:
            self.stream.remove((ticket.generated_timestamp, ticket.id))

    def update(self, ticket: Ticket, at: datetime, **fields: Any) -> None:
        old_external = ticket.external_id
        for name, value in fields.items():
            setattr(ticket, name, value)
        if ticket.external_id != old_external:
            if old_external is not None:
                self.by_external.get(old_external, {}).pop(ticket.id, None)
            if ticket.external_id is not None:
                self.by_external.setdefault(ticket.external_id, {})[ticket.id] = None
        self.touch(ticket, at)
        self._note_status(ticket, at)

    def _note_status(self, ticket: Ticket, at: datetime) -> None:
        """Keep `closed_at` (archiving counts from the close) and tell `on_close`."""
        if ticket.status != "closed":
            ticket.closed_at = None
            return
        if ticket.closed_at is None:
            ticket.closed_at = at
            if self.on_close is not None:
                self.on_close(ticket)

    def _time_key(self, ticket: Ticket) -> Key:
        assert ticket.deleted_at is not None
        return (ticket.deleted_at.timestamp(), ticket.delete_seq, ticket.id)

    def _unlist_deleted(self, ticket: Ticket) -> None:
        self.deleted_by_id.remove((ticket.id,))
        self.deleted_by_time.remove(self._time_key(ticket))

    # ---- listings --------------------------------------------------------------------------

    def deleted_keys(self, sort_by: str) -> SortedKeys:
        """Deleted tickets as sorted keys (ascending); the last element of a key is the id."""
        if sort_by == "deleted_at":
            return self.deleted_by_time
        if sort_by == "subject":  # rare (nothing in bridge asks it): sorted on demand
            return SortedKeys(
                sorted((self.tickets[k[0]].subject.lower(), k[0]) for k in self.deleted_by_id)
            )
        return self.deleted_by_id

    def stream_after(self, key: tuple[int, int], limit: int) -> tuple[list[Ticket], bool]:
        """Up to `limit` tickets strictly after `key` in export order, and whether more remain."""
        start = self.stream.rank(key, right=True)
        chunk = self.stream.slice(start, start + limit)
        return [self.tickets[k[1]] for k in chunk], start + limit < len(self.stream)

    # ---- shapes ----------------------------------------------------------------------------

    def deleted_item(self, ticket: Ticket) -> dict[str, Any]:
        """A `deleted_tickets` list item (the OAS fields only)."""
        assert ticket.deleted_at is not None
        assert ticket.deleted_by is not None
        return {
            "id": ticket.id,
            "subject": ticket.subject,
            "actor": {"id": ticket.deleted_by[0], "name": ticket.deleted_by[1]},
            "deleted_at": iso_z(ticket.deleted_at),
            "previous_state": ticket.status,
        }

    def clear(self) -> None:
        self.next_id = self.first_id
        self.tickets.clear()
        self.by_external.clear()
        self.deleted_by_id.clear()
        self.deleted_by_time.clear()
        self.stream.clear()
        self.archived_ids.clear()
        self.listed_ids.clear()
        self._delete_seq = 0


def page_keys(
    keys: SortedKeys,
    *,
    size: int,
    descending: bool,
    after: Key | None = None,
    before: Key | None = None,
) -> tuple[list[Key], bool]:
    """One cursor page over ascending `keys`, read in the requested direction.

    `after`: the items that follow the cursor in reading order; `before`: the items that
    precede it (the previous page). Returns the page in reading order and whether more
    items lie beyond it in the direction read.
    """
    n = len(keys)
    if before is not None:
        if descending:
            start = keys.rank(before, right=True)
            return keys.slice(start, start + size)[::-1], start + size < n
        end = keys.rank(before)
        return keys.slice(max(0, end - size), end), end - size > 0
    if descending:
        end = n if after is None else keys.rank(after)
        return keys.slice(max(0, end - size), end)[::-1], end - size > 0
    start = 0 if after is None else keys.rank(after, right=True)
    return keys.slice(start, start + size), start + size < n


def offset_slice(keys: SortedKeys, *, page: int, per_page: int, descending: bool) -> list[Key]:
    """Page `page` (1-based) of `per_page` items in the requested direction."""
    n = len(keys)
    first = (page - 1) * per_page
    if not descending:
        return keys.slice(first, first + per_page)
    end = n - first
    if end <= 0:
        return []
    return keys.slice(max(0, end - per_page), end)[::-1]
