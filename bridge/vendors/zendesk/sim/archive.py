"""The Zendesk simulator's ticket archive, deletion schedules and audit log.

Kept apart from `simulator.py` because it is one concern: what happens to a ticket after it
is closed. A closed ticket is archived `archive_after_days` after closing (120 on Zendesk;
documented); an archived ticket is still shown by id but left out of lists, and deleting it
(an admin, or an active deletion schedule) removes it at once: never in the deleted list,
not restorable, 404 by id. Deletions and restores are written to the audit log, which the
API serves only where the account has it (`audit_logs`, an Enterprise feature).

What Zendesk does here beyond its documentation is assumed and listed in `docs/sandbox.md`
("Assumptions ... / Zendesk": archive, deletion schedules, audit log).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bridge.sandbox import HttpError, Request, Response, iso_z, parse_iso
from bridge.vendors.zendesk.sim.store import (
    Key,
    SortedKeys,
    Ticket,
    decode_cursor,
    encode_cursor,
    offset_slice,
)
from bridge.vendors.zendesk.sim.webhooks import PERMANENTLY_DELETED as PERMANENTLY_DELETED_EVENT

if TYPE_CHECKING:
    from bridge.vendors.zendesk.sim.simulator import ZendeskSimulator

__all__ = [
    "SYSTEM_ACTOR",
    "Archive",
    "AuditEntry",
    "DeletionSchedule",
    "duration",
]

#: who a deletion schedule acts as in the audit log (assumed: Zendesk's system user, -1)
SYSTEM_ACTOR = (-1, "Zendesk")
#: the account's first deletion schedule id (real ids are large integers)
FIRST_SCHEDULE_ID = 7772196094461
FIRST_AUDIT_ID = 498483
FORBIDDEN = {
    "error": "Forbidden",
    "description": "You do not have access to this page. Please contact the account owner "
    "of this help desk for further help.",
}
NOT_FOUND = {"error": "RecordNotFound", "description": "Not found"}

#: the audit log's words for ticket deletions (assumed: the OAS names the actions only)
SOFT_DELETED = "Ticket deleted (moved to deleted tickets)"
RESTORED = "Ticket restored from deleted tickets"
PERMANENTLY_DELETED = "Ticket permanently deleted"
ARCHIVED_DELETED = "Archived ticket permanently deleted"

_DURATION = re.compile(
    r"^P(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+)S)?)?$"
)
#: the condition fields the sandbox evaluates (Zendesk offers more: brand, group, ...)
CONDITION_FIELDS = ("duration_since_last_update", "type", "priority", "tags")


def duration(text: str) -> timedelta:
    """An ISO 8601 duration (`P1Y`, `P6M`, `P200D`, `PT72H`); a year is 365 days and a
    month 30 (assumed: how Zendesk counts calendar units is not documented)."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if match is None or text.strip() in ("P", "PT"):
        raise ValueError(f"{text!r} is not an ISO 8601 duration")
    parts = {k: int(v) if v else 0 for k, v in match.groupdict().items()}
    days = parts["y"] * 365 + parts["mo"] * 30 + parts["w"] * 7 + parts["d"]
    return timedelta(days=days, hours=parts["h"], minutes=parts["mi"], seconds=parts["s"])


@dataclass(slots=True)
class DeletionSchedule:
    id: int
    title: str
    description: str
    active: bool
    conditions: dict[str, list[dict[str, Any]]]
    created_at: datetime
    updated_at: datetime
    #: when it next looks for tickets to delete (None while inactive)
    next_run: datetime | None = None

    def matches(self, ticket: Ticket, now: datetime) -> bool:
        every = [_condition(c, ticket, now) for c in self.conditions.get("all", [])]
        some = [_condition(c, ticket, now) for c in self.conditions.get("any", [])]
        return all(every) and (not some or any(some))


def _condition(condition: Mapping[str, Any], ticket: Ticket, now: datetime) -> bool:
    name, operator, value = condition["field"], condition["operator"], condition.get("value")
    if name == "duration_since_last_update":
        age, limit = now - ticket.updated_at, duration(str(value))
        return age > limit if operator == "greater_than" else age < limit
    if name == "tags":
        present = str(value) in ticket.tags
        return present if operator == "includes" else not present
    actual = ticket.type if name == "type" else ticket.priority
    return (actual == value) if operator == "is" else (actual != value)


_OPERATORS = {
    "duration_since_last_update": ("greater_than", "less_than"),
    "type": ("is", "is_not"),
    "priority": ("is", "is_not"),
    "tags": ("includes", "not_includes"),
}


def _conditions(value: Any) -> dict[str, list[dict[str, Any]]]:
    """Validated `conditions {all, any}` (ValueError naming what is wrong)."""
    if not isinstance(value, dict):
        raise ValueError("conditions must be an object with all and any")
    out: dict[str, list[dict[str, Any]]] = {"all": [], "any": []}
    for group in ("all", "any"):
        items = value.get(group) or []
        if not isinstance(items, list):
            raise ValueError(f"conditions.{group} must be an array")
        for item in items:
            if not isinstance(item, dict) or item.get("field") not in _OPERATORS:
                fields = ", ".join(CONDITION_FIELDS)
                raise ValueError(f"condition field must be one of {fields} (sandbox)")
            if item.get("operator") not in _OPERATORS[item["field"]]:
                raise ValueError(f"operator {item.get('operator')!r} not valid here")
            if item["field"] == "duration_since_last_update":
                duration(str(item.get("value")))
            out[group].append(
                {"field": item["field"], "operator": item["operator"], "value": item.get("value")}
            )
    if not out["all"] and not out["any"]:
        raise ValueError("a deletion schedule needs at least one condition")
    return out


@dataclass(frozen=True, slots=True)
class _Window:
    """An audit-log query: its filters and the positions its time window spans."""

    filters: Mapping[str, str | None]
    lo: int
    hi: int


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    action: str  # create | destroy | exported | login | update (OAS)
    actor: tuple[int, str]
    created_at: datetime
    source_id: int
    source_type: str
    change_description: str
    ip_address: str | None = None

    def key(self) -> Key:
        return (self.created_at.timestamp(), self.id)


@dataclass(slots=True)
class Archive:
    """Archiving, deletion schedules and the audit log of one simulated account."""

    sim: ZendeskSimulator
    schedules: dict[int, DeletionSchedule] = field(default_factory=dict)
    audit: dict[int, AuditEntry] = field(default_factory=dict)
    audit_keys: SortedKeys = field(default_factory=SortedKeys)
    _next_schedule: int = FIRST_SCHEDULE_ID
    _next_audit: int = FIRST_AUDIT_ID

    # ---- routes ----------------------------------------------------------------------------

    def register(self, api: str) -> None:
        add = self.sim.route
        add("GET", f"{api}/deletion_schedules", self._list, name="GET deletion_schedules")
        add("POST", f"{api}/deletion_schedules", self._create, name="POST deletion_schedules")
        one = f"{api}/deletion_schedules/{{id}}"
        add("GET", one, self._show, name="GET deletion_schedules/{id}")
        add("PUT", one, self._update, name="PUT deletion_schedules/{id}")
        add("DELETE", one, self._delete, name="DELETE deletion_schedules/{id}")
        add("GET", f"{api}/audit_logs", self._audit_list, name="GET audit_logs")
        add("GET", f"{api}/audit_logs/{{id}}", self._audit_show, name="GET audit_logs/{id}")
        self.sim.admin_route("POST", "deletion_schedules/run", lambda r: self.admin_run())

    # ---- archiving -------------------------------------------------------------------------

    def note_closed(self, ticket: Ticket) -> None:
        """A ticket was closed (or restored closed): archive it when its time comes."""
        assert ticket.closed_at is not None
        due = ticket.closed_at + timedelta(days=self.sim.config.archive_after_days)
        self.sim.schedule_due(("archive", ticket.id), max(due, ticket.closed_at))

    def reschedule_all(self) -> None:
        """`archive_after_days` changed: every closed ticket's archiving moves."""
        for ticket in self.sim.store.tickets.values():
            if ticket.state == "active" and ticket.closed_at is not None and not ticket.archived:
                self.note_closed(ticket)

    def archive_due(self, ticket_id: int, due: datetime) -> None:
        ticket = self.sim.store.live(ticket_id)
        if ticket is None or ticket.archived or ticket.closed_at is None:
            return  # deleted meanwhile (a restore schedules it again)
        if ticket.closed_at + timedelta(days=self.sim.config.archive_after_days) <= due:
            self.sim.store.archive(ticket)

    def archive_now(self, ticket: Ticket) -> bool:
        """Archive a closed ticket at once (import `archive_immediately`, admin act)."""
        if ticket.state != "active" or ticket.status != "closed":
            return False
        self.sim.store.archive(ticket)
        return True

    def delete_archived(
        self, ticket: Ticket, at: datetime, actor: tuple[int, str], *, schedule: str | None = None
    ) -> None:
        """Delete an archived ticket: permanent at once (documented), logged."""
        cause = "archive_schedule" if schedule is not None else "archive_admin"
        self.sim.store.purge_archived(
            ticket, at, cause, in_export=self.sim.config.archive_deletion_in_export
        )
        text = f'{ARCHIVED_DELETED} by deletion schedule "{schedule}"' if schedule else None
        self.log("destroy", actor, ticket.id, text or ARCHIVED_DELETED, at)
        # gone for good, so a permanent deletion to a webhook (ASSUMED: no doc says)
        self.sim.hooks.emit(PERMANENTLY_DELETED_EVENT, ticket, actor, at)

    # ---- deletion schedules: effect --------------------------------------------------------

    def tick(self, now: datetime) -> None:
        """Run every active schedule whose next run fell due, as of its due time."""
        every = timedelta(hours=self.sim.config.deletion_schedule_every_hours)
        for schedule in sorted(self.schedules.values(), key=lambda s: s.id):
            while schedule.active and schedule.next_run is not None and schedule.next_run <= now:
                self.run(schedule, schedule.next_run)
                schedule.next_run += every

    def run(self, schedule: DeletionSchedule, at: datetime) -> list[int]:
        """Delete the archived tickets the schedule's conditions match; their ids."""
        store = self.sim.store
        deleted: list[int] = []
        for ticket_id in list(store.archived_ids):
            ticket = store.tickets[ticket_id]
            if ticket.state == "active" and schedule.matches(ticket, at):
                self.delete_archived(ticket, at, SYSTEM_ACTOR, schedule=schedule.title)
                deleted.append(ticket_id)
        return deleted

    def admin_run(self) -> dict[str, Any]:
        """`POST /_sandbox/deletion_schedules/run`: every active schedule runs now."""
        now = self.sim.clock.now()
        done = {
            str(s.id): self.run(s, now) for s in sorted(self.schedules.values(), key=lambda s: s.id)
        }
        deleted = [i for ids in done.values() for i in ids]
        return {"deleted": deleted, "by_schedule": done}

    # ---- deletion schedules: endpoints -----------------------------------------------------

    def _schedule_json(self, schedule: DeletionSchedule) -> dict[str, Any]:
        return {
            "id": schedule.id,
            "url": self.sim.api_url(f"deletion_schedules/{schedule.id}.json"),
            "title": schedule.title,
            "description": schedule.description,
            "active": schedule.active,
            "default": False,
            "conditions": schedule.conditions,
            "created_at": iso_z(schedule.created_at),
            "updated_at": iso_z(schedule.updated_at),
        }

    def _find(self, request: Request) -> DeletionSchedule:
        try:
            schedule = self.schedules.get(int(request.params["id"]))
        except ValueError:
            schedule = None
        if schedule is None:
            raise HttpError(404, dict(NOT_FOUND))
        return schedule

    def _list(self, request: Request) -> Response:
        ordered = sorted(self.schedules.values(), key=lambda s: s.id)
        return Response(200, {"deletion_schedules": [self._schedule_json(s) for s in ordered]})

    def _show(self, request: Request) -> Response:
        return Response(200, {"deletion_schedule": self._schedule_json(self._find(request))})

    def _create(self, request: Request) -> Response:
        spec = _schedule_body(request)
        if not str(spec.get("title") or "").strip():
            raise HttpError(422, _invalid("title", "Title cannot be blank"))
        now = self.sim.clock.now()
        schedule = DeletionSchedule(
            id=self._next_schedule,
            title=str(spec["title"]),
            description=str(spec.get("description") or ""),
            active=False,
            conditions=_valid_conditions(spec.get("conditions")),
            created_at=now,
            updated_at=now,
        )
        self._set_active(schedule, bool(spec.get("active", False)), now)
        self._next_schedule += 1
        self.schedules[schedule.id] = schedule
        return Response(201, {"deletion_schedule": self._schedule_json(schedule)})

    def _update(self, request: Request) -> Response:
        schedule = self._find(request)
        spec = _schedule_body(request)
        now = self.sim.clock.now()
        if "title" in spec:
            if not str(spec["title"] or "").strip():
                raise HttpError(422, _invalid("title", "Title cannot be blank"))
            schedule.title = str(spec["title"])
        if "description" in spec:
            schedule.description = str(spec["description"] or "")
        if "conditions" in spec:  # replaces every condition (documented)
            schedule.conditions = _valid_conditions(spec["conditions"])
        if "active" in spec:
            self._set_active(schedule, bool(spec["active"]), now)
        schedule.updated_at = now
        return Response(200, {"deletion_schedule": self._schedule_json(schedule)})

    def _delete(self, request: Request) -> Response:
        schedule = self._find(request)
        del self.schedules[schedule.id]
        return Response(204)

    def _set_active(self, schedule: DeletionSchedule, active: bool, now: datetime) -> None:
        """Activation: a first run `deletion_schedule_start_hours` later (Zendesk: within
        72 h, documented), then one every `deletion_schedule_every_hours` (assumed)."""
        if active and not schedule.active:
            others = sum(1 for s in self.schedules.values() if s.active and s is not schedule)
            limit = self.sim.config.max_active_deletion_schedules
            if others >= limit:
                raise HttpError(
                    422,
                    _invalid(
                        "active",
                        f"At most {limit} active deletion schedule(s) (more need the "
                        "Advanced Data Privacy and Protection add-on)",
                    ),
                )
            start = timedelta(hours=self.sim.config.deletion_schedule_start_hours)
            schedule.next_run = now + start
        elif not active:
            schedule.next_run = None
        schedule.active = active

    # ---- audit log -------------------------------------------------------------------------

    def log(
        self, action: str, actor: tuple[int, str], ticket_id: int, text: str, at: datetime
    ) -> None:
        entry = AuditEntry(
            id=self._next_audit,
            action=action,
            actor=actor,
            created_at=at,
            source_id=ticket_id,
            source_type="ticket",
            change_description=text,
            ip_address=None if actor == SYSTEM_ACTOR else "127.0.0.1",
        )
        self._next_audit += 1
        self.audit[entry.id] = entry
        self.audit_keys.add(entry.key())

    def _entry_json(self, entry: AuditEntry) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": entry.id,
            "url": self.sim.api_url(f"audit_logs/{entry.id}.json"),
            "action": entry.action,
            "action_label": {"destroy": "Deleted", "update": "Updated"}.get(entry.action, ""),
            "actor_id": entry.actor[0],
            "actor_name": entry.actor[1],
            "source_id": entry.source_id,
            "source_type": entry.source_type,
            "source_label": f"Ticket #{entry.source_id}",
            "change_description": entry.change_description,
            "created_at": iso_z(entry.created_at),
        }
        if entry.ip_address is not None:  # a string in the OAS: left out for the system
            body["ip_address"] = entry.ip_address
        return body

    def _allowed(self) -> None:
        if not self.sim.config.audit_logs:
            raise HttpError(403, dict(FORBIDDEN))

    def _audit_show(self, request: Request) -> Response:
        self._allowed()
        try:
            entry = self.audit.get(int(request.params["id"]))
        except ValueError:
            entry = None
        if entry is None:
            raise HttpError(404, dict(NOT_FOUND))
        return Response(200, {"audit_log": self._entry_json(entry)})

    def _audit_list(self, request: Request) -> Response:
        """Filters `filter[source_type|source_id|actor_id|action|ip_address]` and a
        `filter[created_at]` window given twice (start, end; `filter[created_at][]` too);
        cursor pages (`page[size]`, `sort=±created_at`, newest first by default) or offset
        pages (`page`, `per_page`, `sort_order`)."""
        self._allowed()
        window = self._window(request)
        cursor_mode = any(k in request.query for k in ("page[size]", "page[after]", "page[before]"))
        if cursor_mode:
            sort = request.arg("sort") or "-created_at"
            if sort not in ("created_at", "-created_at"):
                raise HttpError(400, _bad("sort must be created_at or -created_at"))
            return self._cursor_page(request, window, sort.startswith("-"))
        # offset pages count every match: the window is read whole (bridge reads cursor pages)
        keys = SortedKeys(self._matching(window))
        page = _int_arg(request.arg("page"), 1, 1, 10**9)
        per_page = _int_arg(request.arg("per_page"), 100, 1, 100)
        descending = (request.arg("sort_order") or "desc").lower() == "desc"
        chunk = offset_slice(keys, page=page, per_page=per_page, descending=descending)
        more = page * per_page < len(keys)
        base = {k: v for k, v in request.query.items() if k not in ("page",)}
        return Response(
            200,
            {
                "audit_logs": [self._entry_json(self.audit[k[-1]]) for k in chunk],
                "count": len(keys),
                "next_page": self.sim.api_url("audit_logs.json", {**base, "page": page + 1})
                if more
                else None,
                "previous_page": self.sim.api_url("audit_logs.json", {**base, "page": page - 1})
                if page > 1
                else None,
            },
        )

    def _window(self, request: Request) -> _Window:
        """The filters asked for, and the positions of the `filter[created_at]` window in
        the log (found by bisect: entries outside it are never looked at)."""
        filters = {
            name: request.arg(f"filter[{name}]")
            for name in ("source_type", "source_id", "actor_id", "action", "ip_address")
        }
        if filters["source_id"] is not None and filters["source_type"] is None:
            raise HttpError(400, _bad("filter[source_id] requires filter[source_type]"))
        window = request.args("filter[created_at]") + request.args("filter[created_at][]")
        if window and len(window) != 2:
            raise HttpError(400, _bad("filter[created_at] must be given twice: start and end"))
        bounds = [_time_arg(w) for w in window]
        keys = self.audit_keys
        if not bounds:
            return _Window(filters, 0, len(keys))
        start, end = bounds[0].timestamp(), bounds[1].timestamp()
        return _Window(filters, keys.rank((start,)), keys.rank((end, math.inf), right=True))

    def _matching(
        self, window: _Window, lo: int = 0, hi: int | None = None, *, descending: bool = False
    ) -> Iterator[Key]:
        """Lazily, the window's entries between positions `lo` and `hi` that match."""
        start, stop = max(lo, window.lo), min(window.hi if hi is None else hi, window.hi)
        for key in self.audit_keys.between(start, stop, descending=descending):
            if _entry_matches(self.audit[key[-1]], window.filters):
                yield key

    def _cursor_page(self, request: Request, window: _Window, descending: bool) -> Response:
        """One cursor page, read from the cursor's position in the reading direction until
        the page (and one more match, for `has_more`) is found."""
        size = _int_arg(request.arg("page[size]"), 100, 1, 100)
        try:
            after = decode_cursor(a) if (a := request.arg("page[after]")) else None
            before = decode_cursor(b) if (b := request.arg("page[before]")) else None
        except ValueError:
            raise HttpError(400, _bad("page[after]/page[before] is not a valid cursor")) from None
        keys = self.audit_keys
        if before is not None:  # the page before the cursor: read away from it, then turn
            if descending:
                found = self._matching(window, keys.rank(before, right=True))
            else:
                found = self._matching(window, hi=keys.rank(before), descending=True)
        elif descending:
            end = None if after is None else keys.rank(after)
            found = self._matching(window, hi=end, descending=True)
        else:
            start = 0 if after is None else keys.rank(after, right=True)
            found = self._matching(window, start)
        got = list(itertools.islice(found, size + 1))
        has_more, chunk = len(got) > size, got[:size]
        if before is not None:
            chunk.reverse()
        first = encode_cursor(chunk[0]) if chunk else None
        last = encode_cursor(chunk[-1]) if chunk else None
        base = {k: v for k, v in request.query.items() if k not in ("page[after]", "page[before]")}
        return Response(
            200,
            {
                "audit_logs": [self._entry_json(self.audit[k[-1]]) for k in chunk],
                "meta": {"has_more": has_more, "after_cursor": last, "before_cursor": first},
                "links": {
                    "prev": self.sim.api_url("audit_logs.json", {**base, "page[before]": first})
                    if first
                    else None,
                    "next": self.sim.api_url("audit_logs.json", {**base, "page[after]": last})
                    if last
                    else None,
                },
            },
        )

    def clear(self) -> None:
        self.schedules.clear()
        self.audit.clear()
        self.audit_keys.clear()
        self._next_schedule = FIRST_SCHEDULE_ID
        self._next_audit = FIRST_AUDIT_ID


def _entry_matches(entry: AuditEntry, filters: Mapping[str, str | None]) -> bool:
    wanted = {
        "source_type": entry.source_type,
        "source_id": str(entry.source_id),
        "actor_id": str(entry.actor[0]),
        "action": entry.action,
        "ip_address": entry.ip_address,
    }
    return all(value is None or wanted[name] == value for name, value in filters.items())


def _schedule_body(request: Request) -> dict[str, Any]:
    body = request.json()
    if not isinstance(body, dict) or not isinstance(body.get("deletion_schedule"), dict):
        raise HttpError(400, _bad("a deletion_schedule object is required"))
    spec: dict[str, Any] = body["deletion_schedule"]
    return spec


def _valid_conditions(value: Any) -> dict[str, list[dict[str, Any]]]:
    try:
        return _conditions(value)
    except ValueError as exc:
        raise HttpError(422, _invalid("conditions", str(exc))) from None


def _invalid(field_name: str, description: str) -> dict[str, Any]:
    return {
        "error": "RecordInvalid",
        "description": "Record validation errors",
        "details": {field_name: [{"type": "invalid", "description": description}]},
    }


def _bad(description: str) -> dict[str, Any]:
    return {"error": "InvalidValue", "description": description}


def _int_arg(value: str | None, default: int, low: int, high: int) -> int:
    if value is None or not value.strip():
        return default
    try:
        return max(low, min(high, int(value)))
    except ValueError:
        raise HttpError(400, _bad(f"{value!r} is not a number")) from None


def _time_arg(value: str) -> datetime:
    try:
        return parse_iso(value)
    except ValueError:
        raise HttpError(400, _bad(f"{value!r} is not an ISO 8601 time")) from None
