"""The SuperOffice simulator's ticket store: state and deletion semantics, no HTTP.

What it models, after the reference sheet (§0a, §1.2, §2):
- a soft delete (every API delete) sets `BaseStatus` Deleted and the built-in Deleted status,
  bumps `LastChanged` and remembers the pre-delete status internally (not exposed, as in
  SuperOffice);
- `UndeleteByIds` puts the ticket in the *default open status*, never back in its old one;
- a retention job hard-deletes soft-deleted tickets `retention` after their deletion, run
  lazily (`sweep`) on the simulated clock from a heap, so a request costs O(expired);
- merged tickets (`BaseStatus` Merged, `ConnectId` = master) are not deletions.

Who changed a ticket last is tracked (`changed_by`) even though the API does not expose it.
Who did what is kept in the ticket log (`ticket_log_action`, read through the `dynamic`
archive provider): one entry per delete, undelete, status change and edit, naming the Service
user (`ejuser`) who acted. A hard delete removes the ticket's log entries with it.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum

from bridge.vendors.superoffice.sim.index import SortedKeys, key_of, second_of

__all__ = [
    "DEFAULT_STATUSES",
    "EJUSER_OFFSET",
    "BaseStatus",
    "LogAction",
    "LogEntry",
    "StoreError",
    "Ticket",
    "TicketStatus",
    "TicketStore",
]


class BaseStatus(IntEnum):
    """SuperOffice `TicketBaseStatus`; JSON shows the name, webhooks/dynamic the int."""

    UNKNOWN = 0
    ACTIVE = 1
    CLOSED = 2
    POSTPONED = 3
    DELETED = 4
    MERGED = 5

    @property
    def label(self) -> str:
        return self.name.capitalize()

    @classmethod
    def from_label(cls, text: str) -> BaseStatus:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise StoreError(f"unknown base status {text!r}") from None


@dataclass(frozen=True, slots=True)
class TicketStatus:
    """A user-defined ticket status (`TicketStatusEntity`) mapping to a base status."""

    status_id: int
    name: str
    base: BaseStatus
    is_default: bool = False
    time_counter: str = "Internally"
    no_email_reopen: bool = False
    used_in_queue: bool = False

    def entity(self) -> dict[str, object]:
        return {
            "TicketStatusId": self.status_id,
            "Name": self.name,
            "Status": self.base.label,
            "TimeCounter": self.time_counter,
            "NoEmailReopen": self.no_email_reopen,
            "IsDefault": self.is_default,
            "UsedInQueue": self.used_in_queue,
            "TableRight": None,
            "FieldProperties": {},
        }


# Ids 1-5 mirror the base statuses (SuperOffice's built-in ones); 304/305 are user statuses so
# that "restore goes to the default open status, not the previous one" is observable.
DEFAULT_STATUSES: tuple[TicketStatus, ...] = (
    TicketStatus(1, "Open", BaseStatus.ACTIVE, is_default=True, used_in_queue=True),
    TicketStatus(2, "Closed", BaseStatus.CLOSED, is_default=True),
    TicketStatus(3, "Postponed", BaseStatus.POSTPONED, is_default=True),
    TicketStatus(4, "Deleted", BaseStatus.DELETED, True, "Queue", no_email_reopen=True),
    TicketStatus(5, "Merged", BaseStatus.MERGED, True, "Queue", no_email_reopen=True),
    TicketStatus(304, "In progress", BaseStatus.ACTIVE, used_in_queue=True),
    TicketStatus(305, "Waiting for customer", BaseStatus.POSTPONED, time_counter="Externally"),
)


class LogAction(IntEnum):
    """The `TicketLogAction` values the simulator writes (docs: database enum
    `ticketlogaction.md`). Which action SuperOffice logs for an API delete or undelete is
    not documented: a delete is `DeleteTicket`, an undelete or any status change
    `ChangeStatus`, another edit `EditTicket` (assumed)."""

    CHANGE_STATUS = 21
    EDIT_TICKET = 33
    DELETE_TICKET = 34
    JOIN_TICKETS = 35

    @property
    def label(self) -> str:
        """The enum's name as SuperOffice spells it (`Ticket_DeleteTicket`)."""
        return "Ticket_" + "".join(part.capitalize() for part in self.name.split("_"))


#: a Service user's id (`ejuser.id`) is the associate's id plus this: two id spaces, kept
#: apart so that a client confusing them is caught (the real mapping is `associate.ejuserId`)
EJUSER_OFFSET = 1000


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One `ticket_log_action` row (ids and times only, as bridge reads them)."""

    entry_id: int
    ticket_id: int
    #: the Service user who acted (`ticket_log_action.user_id`, FK `ejuser`)
    user_id: int
    log_when: datetime
    log_action: LogAction


class StoreError(ValueError):
    """A request the store refuses (unknown status, bad merge); answered as 400."""


@dataclass(slots=True)
class Ticket:
    ticket_id: int
    title: str
    created_at: datetime
    last_changed: datetime
    status: TicketStatus
    connect_id: int = -1
    owned_by: int = 0
    created_by: int = 1
    changed_by: int = 1
    #: the status before the current soft delete (kept internally, never exposed)
    pre_delete_status_id: int | None = None
    deleted_at: datetime | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def base_status(self) -> BaseStatus:
        return self.status.base


class TicketStore:
    """All tickets of one tenant. Not thread-safe: the simulator holds its lock around calls."""

    def __init__(
        self,
        *,
        now: Callable[[], datetime],
        retention: timedelta = timedelta(days=14),
        statuses: Iterable[TicketStatus] = DEFAULT_STATUSES,
        first_id: int = 1,
    ) -> None:
        self._now = now
        self.retention = retention
        self.statuses: dict[int, TicketStatus] = {s.status_id: s for s in statuses}
        self._first_id = first_id
        #: told of every change of a ticket: (ticket, actor, whether it was just created);
        #: the simulator's webhooks listen here
        self.on_touch: Callable[[Ticket, int, bool], None] | None = None
        self.reset()

    def reset(self) -> None:
        self.tickets: dict[int, Ticket] = {}
        #: soft-deleted ids in the order they were deleted (the RecycleTicket candidates)
        self.deleted: dict[int, None] = {}
        #: hard-deleted ids (by retention or admin purge)
        self.purged: set[int] = set()
        self._heap: list[tuple[datetime, int]] = []
        #: per provider (True: the recycle bin), its tickets in (lastChanged second, id)
        #: order (`sim/index.py`); `_keys` says where each ticket stands in them
        self.index: dict[bool, SortedKeys] = {False: SortedKeys(), True: SortedKeys()}
        self._keys: dict[int, tuple[bool, int]] = {}
        self._next_id = self._first_id
        #: the ticket log, per ticket in the order written
        self.log: dict[int, list[LogEntry]] = {}
        #: Service users: `ejuser.id` → the associate (`associate.ejuserId` read backwards)
        self.ejusers: dict[int, int] = {}
        self._next_log_id = 1

    # ------------------------------------------------------------------ statuses

    def status(self, status_id: int) -> TicketStatus:
        try:
            return self.statuses[status_id]
        except KeyError:
            raise StoreError(f"unknown ticket status {status_id}") from None

    def default_status(self, base: BaseStatus) -> TicketStatus:
        matches = [s for s in self.statuses.values() if s.base is base]
        if not matches:
            raise StoreError(f"no status with base status {base.label}")
        return next((s for s in matches if s.is_default), matches[0])

    def resolve_status(self, value: object) -> TicketStatus:
        """A status given as an id, an id string, a name, or a `{TicketStatusId}` object."""
        if isinstance(value, Mapping):
            value = value.get("TicketStatusId", value.get("Id"))
        if isinstance(value, bool):
            raise StoreError("ticket status must be an id or a name")
        if isinstance(value, int):
            return self.status(value)
        if isinstance(value, str):
            text = value.strip()
            if text.lstrip("-").isdigit():
                return self.status(int(text))
            for status in self.statuses.values():
                if status.name.lower() == text.lower():
                    return status
        raise StoreError(f"unknown ticket status {value!r}")

    # ------------------------------------------------------------------ bookkeeping

    def _touch(self, ticket: Ticket, when: datetime, actor: int, *, created: bool = False) -> None:
        """Set LastChanged (every change, status changes included, ends here), tell
        `on_touch`, and keep the ticket's place in its provider's index."""
        ticket.last_changed = when
        ticket.changed_by = actor
        if self.on_touch is not None:
            self.on_touch(ticket, actor, created)
        place = (
            ticket.base_status is BaseStatus.DELETED,
            key_of(second_of(when), ticket.ticket_id),
        )
        old = self._keys.get(ticket.ticket_id)
        if old == place:
            return
        if old is not None:
            self.index[old[0]].remove(old[1])
        self.index[place[0]].add(place[1])
        self._keys[ticket.ticket_id] = place

    def _unindex(self, ticket_id: int) -> None:
        old = self._keys.pop(ticket_id, None)
        if old is not None:
            self.index[old[0]].remove(old[1])

    def _log(self, ticket: Ticket, when: datetime, actor: int, action: LogAction) -> None:
        """Log what `actor` (an associate) did, as the Service user they log in as."""
        user_id = actor + EJUSER_OFFSET
        self.ejusers[user_id] = actor
        entry = LogEntry(self._next_log_id, ticket.ticket_id, user_id, when, action)
        self._next_log_id += 1
        self.log.setdefault(ticket.ticket_id, []).append(entry)

    def associate_of(self, user_id: int) -> int | None:
        """The associate whose `ejuserId` is `user_id` (None: no such associate)."""
        return self.ejusers.get(user_id)

    def _mark_deleted(self, ticket: Ticket, when: datetime) -> None:
        ticket.deleted_at = when
        self.deleted[ticket.ticket_id] = None
        heapq.heappush(self._heap, (when, ticket.ticket_id))

    def _hard_delete(self, ticket_id: int) -> None:
        self.tickets.pop(ticket_id, None)
        self.deleted.pop(ticket_id, None)
        self._unindex(ticket_id)
        # the log goes with the ticket: who deleted it is only known to whoever read it before
        self.log.pop(ticket_id, None)
        self.purged.add(ticket_id)

    # ------------------------------------------------------------------ reads

    def get(self, ticket_id: int) -> Ticket | None:
        return self.tickets.get(ticket_id)

    def __len__(self) -> int:
        return len(self.tickets)

    # ------------------------------------------------------------------ writes

    def create(
        self,
        *,
        title: str,
        status: object = None,
        owned_by: int = 0,
        created_by: int = 1,
        actor: int | None = None,
        ticket_id: int | None = None,
        created_at: datetime | None = None,
        last_changed: datetime | None = None,
        connect_id: int = -1,
        pre_delete_status: object = None,
    ) -> Ticket:
        """Create a ticket (API create or admin seed). A status with base Deleted seeds a
        soft-deleted ticket whose deletion time is its LastChanged."""
        now = self._now()
        chosen = (
            self.default_status(BaseStatus.ACTIVE)
            if status is None
            else self.resolve_status(status)
        )
        if ticket_id is None:
            ticket_id = self._next_id
        elif ticket_id in self.tickets or ticket_id <= 0:
            raise StoreError(f"ticket id {ticket_id} is taken or invalid")
        self._next_id = max(self._next_id, ticket_id + 1)
        self.purged.discard(ticket_id)
        created = created_at or now
        ticket = Ticket(
            ticket_id=ticket_id,
            title=title,
            created_at=created,
            last_changed=created,
            status=chosen,
            connect_id=connect_id,
            owned_by=owned_by,
            created_by=created_by,
        )
        self.tickets[ticket_id] = ticket
        self._touch(
            ticket,
            last_changed or created,
            created_by if actor is None else actor,
            created=True,
        )
        if chosen.base is BaseStatus.DELETED:
            ticket.pre_delete_status_id = (
                self.resolve_status(pre_delete_status).status_id
                if pre_delete_status is not None
                else self.default_status(BaseStatus.ACTIVE).status_id
            )
            self._mark_deleted(ticket, ticket.last_changed)
        return ticket

    def soft_delete(self, ids: Sequence[int], actor: int) -> list[int]:
        """Soft-delete each existing, not yet deleted ticket; return the ids changed."""
        now = self._now()
        changed: list[int] = []
        deleted_status = self.default_status(BaseStatus.DELETED)
        for ticket_id in dict.fromkeys(ids):
            ticket = self.tickets.get(ticket_id)
            if ticket is None or ticket.base_status is BaseStatus.DELETED:
                continue
            ticket.pre_delete_status_id = ticket.status.status_id
            ticket.status = deleted_status
            self._touch(ticket, now, actor)
            self._mark_deleted(ticket, now)
            self._log(ticket, now, actor, LogAction.DELETE_TICKET)
            changed.append(ticket_id)
        return changed

    def undelete(self, ids: Sequence[int], actor: int) -> list[int]:
        """Restore soft-deleted tickets to the default open status (not the previous one)."""
        now = self._now()
        changed: list[int] = []
        open_status = self.default_status(BaseStatus.ACTIVE)
        for ticket_id in dict.fromkeys(ids):
            ticket = self.tickets.get(ticket_id)
            if ticket is None or ticket.base_status is not BaseStatus.DELETED:
                continue
            ticket.status = open_status
            ticket.deleted_at = None
            ticket.pre_delete_status_id = None
            self.deleted.pop(ticket_id, None)
            self._touch(ticket, now, actor)
            self._log(ticket, now, actor, LogAction.CHANGE_STATUS)
            changed.append(ticket_id)
        return changed

    def purge(self, ids: Sequence[int]) -> list[int]:
        """Hard-delete at once (admin only: SuperOffice offers API users no hard delete)."""
        changed = [i for i in dict.fromkeys(ids) if i in self.tickets]
        for ticket_id in changed:
            self._hard_delete(ticket_id)
        return changed

    def merge(self, secondary_ids: Sequence[int], into: int, actor: int) -> list[int]:
        """Merge secondaries into a master: BaseStatus Merged, ConnectId = master."""
        master = self.tickets.get(into)
        if master is None or master.base_status in {BaseStatus.DELETED, BaseStatus.MERGED}:
            raise StoreError(f"ticket {into} cannot be a merge master")
        now = self._now()
        merged_status = self.default_status(BaseStatus.MERGED)
        changed: list[int] = []
        for ticket_id in dict.fromkeys(secondary_ids):
            ticket = self.tickets.get(ticket_id)
            if ticket is None or ticket_id == into or ticket.base_status is BaseStatus.DELETED:
                continue
            ticket.status = merged_status
            ticket.connect_id = into
            self._touch(ticket, now, actor)
            self._log(ticket, now, actor, LogAction.JOIN_TICKETS)
            changed.append(ticket_id)
        if changed:
            self._touch(master, now, actor)
        return changed

    def update(
        self,
        ticket: Ticket,
        actor: int,
        *,
        title: str | None = None,
        status: TicketStatus | None = None,
        owned_by: int | None = None,
    ) -> None:
        """A PATCH/PUT. Setting a Deleted status soft-deletes (UNCONFIRMED in SuperOffice);
        leaving Deleted through a status change restores, with the status given."""
        now = self._now()
        if title is not None:
            ticket.title = title
        if owned_by is not None:
            ticket.owned_by = owned_by
        action = LogAction.EDIT_TICKET
        if status is not None and status.status_id != ticket.status.status_id:
            action = LogAction.CHANGE_STATUS
            was_deleted = ticket.base_status is BaseStatus.DELETED
            if status.base is BaseStatus.DELETED and not was_deleted:
                ticket.pre_delete_status_id = ticket.status.status_id
                self._mark_deleted(ticket, now)
            elif was_deleted and status.base is not BaseStatus.DELETED:
                ticket.deleted_at = None
                ticket.pre_delete_status_id = None
                self.deleted.pop(ticket.ticket_id, None)
            ticket.status = status
        self._touch(ticket, now, actor)
        self._log(ticket, now, actor, action)

    def sweep(self) -> list[int]:
        """The retention job: hard-delete tickets deleted at least `retention` ago."""
        if not self._heap:
            return []
        cutoff = self._now() - self.retention
        removed: list[int] = []
        while self._heap and self._heap[0][0] <= cutoff:
            deleted_at, ticket_id = heapq.heappop(self._heap)
            ticket = self.tickets.get(ticket_id)
            # stale heap entries: restored, re-deleted later, or already purged
            if ticket is None or ticket.deleted_at != deleted_at:
                continue
            if ticket.base_status is not BaseStatus.DELETED:
                continue
            self._hard_delete(ticket_id)
            removed.append(ticket_id)
        return removed

    def purge_due(self, ticket: Ticket) -> datetime | None:
        """When the retention job will remove this soft-deleted ticket."""
        if ticket.deleted_at is None:
            return None
        return ticket.deleted_at + self.retention
