"""A local Zendesk Support API for tests, the demo and benchmarks.

Implements the endpoints bridge uses for ticket deletion (soft delete, restore, purge, jobs,
deleted-ticket listing, incremental export, import) with the shapes, errors, headers and
limits of `../shared/reference/zendesk-api.md`. Where Zendesk's behaviour is unconfirmed
the choice made here is listed in `docs/sandbox.md` ("Assumptions ... / Zendesk").

All state lives in memory behind `self.lock`; time comes from the simulated clock, and
everything time-driven (job progress, the 30-day scrub, job expiry) is applied lazily by
`tick` in due order.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

from bridge.sandbox import (
    HttpError,
    Request,
    Response,
    Route,
    Schedule,
    SimClock,
    SimulatorBase,
    parse_iso,
)
from bridge.sandbox.purgelog import PurgePrior
from bridge.vendors.zendesk.sim.archive import (
    PERMANENTLY_DELETED,
    RESTORED,
    SOFT_DELETED,
    SYSTEM_ACTOR,
    Archive,
)
from bridge.vendors.zendesk.sim.render import JSON_TYPE, TicketJson, json_page, json_text
from bridge.vendors.zendesk.sim.store import (
    LIVE_STATUSES,
    SortedKeys,
    Ticket,
    TicketStore,
    decode_cursor,
    encode_cursor,
    export_cursor,
    offset_slice,
    page_keys,
    parse_export_cursor,
)
from bridge.vendors.zendesk.sim.webhooks import (
    PERMANENTLY_DELETED as PERMANENTLY_DELETED_EVENT,
)
from bridge.vendors.zendesk.sim.webhooks import (
    SOFT_DELETED as SOFT_DELETED_EVENT,
)
from bridge.vendors.zendesk.sim.webhooks import (
    UNDELETED as UNDELETED_EVENT,
)
from bridge.vendors.zendesk.sim.webhooks import ZendeskWebhooksApi

__all__ = ["PLANS", "ZendeskConfig", "ZendeskSimulator"]

#: account-wide requests per minute by plan (Support/Suite; High Volume raises to 2500)
PLANS: dict[str, int] = {
    "team": 200,
    "growth": 400,
    "professional": 400,
    "enterprise": 700,
    "enterprise_plus": 2500,
    "high_volume": 2500,
}

#: route name -> endpoint limit name (header `zendesk-ratelimit-<name>`, see `HEADERLESS`)
ENDPOINT_ROUTES: dict[str, str] = {
    "GET deleted_tickets": "deleted-tickets-index",
    "GET incremental/tickets/cursor": "incremental-exports",
    "GET incremental/tickets": "incremental-exports",
    "DELETE tickets/{id}": "tickets-destroy",
    "DELETE deleted_tickets/{id}": "deleted-tickets-destroy",
    "DELETE deleted_tickets/destroy_many": "deleted-tickets-destroy_many",
}

DEFAULT_ENDPOINT_LIMITS: dict[str, int] = {
    "deleted-tickets-index": 10,
    "incremental-exports": 10,
    "tickets-destroy": 400,
    "deleted-tickets-destroy": 1000,
    "deleted-tickets-destroy_many": 300,
}

#: endpoint limits enforced (documented) whose header name is not documented nor recorded:
#: no header is sent for them rather than an invented one
HEADERLESS = frozenset({"tickets-destroy"})

_LIMIT_MESSAGES = {
    "deleted-tickets-index": "Number of allowed deleted tickets API requests per minute exceeded",
    "incremental-exports": "Number of allowed incremental export API requests per minute exceeded",
}

NOT_FOUND = {"error": "RecordNotFound", "description": "Not found"}
UNAUTHORIZED = {"error": "Couldn't authenticate you"}
JOB_TYPE_SOFT_DELETE = "Bulk Update Ticket"
JOB_TYPE_PURGE = "Bulk Permanent Delete Ticket"
JOB_TYPE_IMPORT = "Bulk Import Ticket"
PRIORITIES = ("urgent", "high", "normal", "low")
TYPES = ("problem", "incident", "question", "task")
OFFSET_RECORD_LIMIT = 10_000  # offset pagination stops after 100 pages of 100 (2024)


@dataclass(slots=True)
class ZendeskConfig:
    """Everything `/_sandbox/config` can change. Durations are simulated seconds."""

    account_limit: int = 700
    rate_limits: bool = True
    endpoint_limits: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_ENDPOINT_LIMITS))
    #: a job waits this long queued, then works `base + per item` seconds
    job_queue_seconds: float = 1.0
    job_base_seconds: float = 1.5
    job_item_seconds: float = 0.1
    #: a fresh job id answers 404 this long (node-zendesk retries on it)
    job_404_seconds: float = 0.0
    job_ttl_seconds: float = 86_400.0
    max_jobs: int = 30
    max_ids: int = 100
    scrub_days: float = 30.0
    export_max_per_page: int = 1000
    #: the API user: the actor of deletions made through the API
    api_user_id: int = 1
    api_user_name: str = "Sandbox Admin"
    account_id: int = 18525119
    #: a closed ticket is archived this long after closing (Zendesk: 120 days, documented)
    archive_after_days: float = 120.0
    #: whether `show_many` returns archived tickets (an old help-centre text says every
    #: ticket endpoint but the list does; unconfirmed today)
    archived_in_show_many: bool = True
    #: whether a deleted archived ticket leaves a SCRUBBED row in the export (assumed not:
    #: it is gone from everything)
    archive_deletion_in_export: bool = False
    #: an activated deletion schedule first runs this long after (Zendesk: "within 72 h"),
    #: then every `deletion_schedule_every_hours` (assumed)
    deletion_schedule_start_hours: float = 72.0
    deletion_schedule_every_hours: float = 24.0
    #: active deletion schedules allowed (one; ten with the ADPP add-on)
    max_active_deletion_schedules: int = 1
    #: whether the account has the audit log (Enterprise): `GET audit_logs` answers 403 if not
    audit_logs: bool = False
    #: a webhook call's attempt times out after this many real seconds (sim/webhooks.py)
    webhook_timeout_seconds: float = 10.0
    #: the circuit breaker's 70 % counts only with at least this many attempts in 5 min
    webhook_breaker_min_requests: int = 10
    #: whether the 30-day scrub sends `ticket.permanently_deleted` (UNCONFIRMED)
    scrub_sends_webhook: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply admin changes; `plan` (name or int) sets `account_limit`. Unknown keys fail."""
        names = {f.name for f in fields(self)}
        unknown = set(changes) - names - {"plan"}
        if unknown:
            raise ValueError(f"config: unknown keys {sorted(unknown)}")
        if "plan" in changes:
            self.account_limit = plan_limit(changes["plan"])
        for name, value in changes.items():
            if name == "plan":
                continue
            if name == "endpoint_limits":
                if not isinstance(value, dict):
                    raise ValueError("config: endpoint_limits must be an object")
                self.endpoint_limits.update({str(k): int(v) for k, v in value.items()})
                continue
            current = getattr(self, name)
            if isinstance(current, bool):
                setattr(self, name, bool(value))
            elif isinstance(current, int):
                setattr(self, name, int(value))
            elif isinstance(current, float):
                setattr(self, name, float(value))
            else:
                setattr(self, name, str(value))


def plan_limit(plan: str | int) -> int:
    if isinstance(plan, int) and not isinstance(plan, bool):
        if plan <= 0:
            raise ValueError("plan: a per-minute limit must be positive")
        return plan
    name = str(plan).lower().replace("-", "_").replace(" ", "_")
    if name.isdigit():
        return plan_limit(int(name))
    if name not in PLANS:
        raise ValueError(f"plan: unknown plan {plan!r} (one of {sorted(PLANS)} or an int)")
    return PLANS[name]


JobKind = Literal["soft_delete", "purge", "import"]


@dataclass(slots=True)
class Job:
    id: str
    kind: JobKind
    job_type: str
    ids: list[int]
    payload: list[dict[str, Any]]
    total: int | None
    created_at: datetime
    start_at: datetime
    done_at: datetime
    actor: tuple[int, str]
    fail: bool = False
    #: an import with `archive_immediately=true`: closed tickets go straight to the archive
    archive: bool = False
    status: str = "queued"  # becomes "completed" or "failed" when done
    results: Any = None
    message: str | None = None


class ZendeskSimulator(SimulatorBase):
    """Zendesk Support, in memory, over real HTTP on 127.0.0.1.

    Use in-process (`with ZendeskSimulator(clock=SimClock(frozen=True)) as zd:`) or through
    the CLI (`serve_forever()`). The Python methods `seed_tickets`, `agent_act`,
    `ticket_state`, `finish_jobs` and `configure` mirror the admin endpoints.

    Irreversible requests: `DELETE deleted_tickets/destroy_many` and `DELETE
    deleted_tickets/{id}` (permanent deletion, each queues a job) are recorded in the purge
    log (`purge_log()`, `GET /_sandbox/purges`) once the job is queued, one record per id.
    A record is a duplicate when the ticket was already purged (on request, by an agent or
    by the scrub) or was in another purge job still queued or working. Requests answered 404
    (no id soft-deleted) or 429 (too many jobs) were not accepted and are not recorded.
    """

    def __init__(
        self,
        *,
        email: str = "admin@example.com",
        token: str = "sandbox-token",
        host: str = "127.0.0.1",
        port: int = 0,
        clock: SimClock | None = None,
        plan: str | int = "enterprise",
        seed: int = 0,
    ) -> None:
        super().__init__(host=host, port=port, clock=clock, seed=seed)
        self.email = email
        self._token = token
        self.config = ZendeskConfig(account_limit=plan_limit(plan))
        self.store = TicketStore()
        self.jobs: dict[str, Job] = {}
        self._active_jobs: dict[str, None] = {}
        #: ticket id -> the purge jobs still queued or working that carry it
        self._purging: dict[int, dict[str, None]] = {}
        self._due: Schedule[tuple[str, str | int]] = Schedule()
        self._job_rng = random.Random(seed)
        self.archive = Archive(self)
        self._render: TicketJson | None = None
        self._render_api = ""
        self.store.on_close = self.archive.note_closed
        #: the Webhooks API and the event calls it feeds (sim/webhooks.py)
        self.hooks = ZendeskWebhooksApi(self)
        self._register_routes()

    # ---- routes ----------------------------------------------------------------------------

    def _register_routes(self) -> None:
        api = "/api/v2"
        add = self.route
        add("POST", f"{api}/imports/tickets", self._import_one, name="POST imports/tickets")
        add(
            "POST",
            f"{api}/imports/tickets/create_many",
            self._import_many,
            name="POST imports/tickets/create_many",
        )
        add("GET", f"{api}/users/me", self._me, name="GET users/me")
        add("GET", f"{api}/tickets", self._list_tickets, name="GET tickets")
        add("GET", f"{api}/tickets/show_many", self._show_many, name="GET tickets/show_many")
        add("GET", f"{api}/tickets/{{id}}", self._show, name="GET tickets/{id}")
        add(
            "DELETE",
            f"{api}/tickets/destroy_many",
            self._destroy_many,
            name="DELETE tickets/destroy_many",
        )
        add("DELETE", f"{api}/tickets/{{id}}", self._destroy, name="DELETE tickets/{id}")
        add("GET", f"{api}/deleted_tickets", self._deleted_list, name="GET deleted_tickets")
        add(
            "PUT",
            f"{api}/deleted_tickets/restore_many",
            self._restore_many,
            name="PUT deleted_tickets/restore_many",
        )
        add(
            "PUT",
            f"{api}/deleted_tickets/{{id}}/restore",
            self._restore,
            name="PUT deleted_tickets/{id}/restore",
        )
        add(
            "DELETE",
            f"{api}/deleted_tickets/destroy_many",
            self._purge_many,
            name="DELETE deleted_tickets/destroy_many",
        )
        add(
            "DELETE",
            f"{api}/deleted_tickets/{{id}}",
            self._purge_one,
            name="DELETE deleted_tickets/{id}",
        )
        add(
            "GET",
            f"{api}/job_statuses/show_many",
            self._jobs_show_many,
            name="GET job_statuses/show_many",
        )
        add("GET", f"{api}/job_statuses/{{id}}", self._job_show, name="GET job_statuses/{id}")
        add(
            "GET",
            f"{api}/incremental/tickets/cursor",
            self._export,
            name="GET incremental/tickets/cursor",
        )
        add(
            "GET",
            f"{api}/incremental/tickets",
            self._export_by_time,
            name="GET incremental/tickets",
        )
        self.archive.register(api)
        self.hooks.register(api)

    # ---- hooks -----------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        """API token Basic (`{email}/token:{token}`) or `Bearer {token}`; else 401."""
        header = request.header("authorization") or ""
        scheme, _, value = header.partition(" ")
        ok = False
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            expected = f"{self.email}/token:{self._token}"
            ok = hmac.compare_digest(decoded.encode(), expected.encode())
        elif scheme.lower() == "bearer":
            ok = hmac.compare_digest(value.strip().encode(), self._token.encode())
        if not ok:
            return Response(401, dict(UNAUTHORIZED))
        request.principal = (self.config.api_user_id, self.config.api_user_name)
        return None

    def rate_limit(self, request: Request, route: Route) -> Response | None:
        cfg = self.config
        self.limiter.enabled = cfg.rate_limits
        endpoint = ENDPOINT_ROUTES.get(route.name)
        endpoint_limit = cfg.endpoint_limits.get(endpoint, 0) if endpoint else 0
        account = self.limiter.peek("account", cfg.account_limit)
        ep = self.limiter.peek(f"endpoint:{endpoint}", endpoint_limit) if endpoint_limit else None
        if account.allowed and (ep is None or ep.allowed):
            account = self.limiter.hit("account", cfg.account_limit)
            if ep is not None:
                ep = self.limiter.hit(f"endpoint:{endpoint}", endpoint_limit)
        reset = str(math.ceil(account.reset))
        headers = request.response_headers
        headers["x-rate-limit"] = str(account.limit)
        headers["x-rate-limit-remaining"] = str(account.remaining)
        headers["ratelimit-limit"] = str(account.limit)
        headers["ratelimit-remaining"] = str(account.remaining)
        headers["ratelimit-reset"] = reset
        if ep is not None and endpoint not in HEADERLESS:
            # lower case, as recorded in 2024 (`zendesk-ratelimit-tickets-index`)
            headers[f"zendesk-ratelimit-{endpoint}"] = (
                f"total={ep.limit}; remaining={ep.remaining}; resets={math.ceil(ep.reset)}"
            )
        denied = ep if ep is not None and not ep.allowed else account
        if denied.allowed:
            return None
        description = (
            _LIMIT_MESSAGES.get(
                endpoint or "", "Number of allowed API requests per minute exceeded"
            )
            if denied is ep
            else "Number of allowed API requests per minute exceeded"
        )
        return Response(
            429,
            {"error": "APIRateLimitExceeded", "description": description},
            {"Retry-After": denied.retry_after_header},
        )

    def tick(self, now: datetime) -> None:
        for due, (kind, ident) in self._due.pop_due_items(now):
            if kind == "job":
                self._complete_job(str(ident), due)
            elif kind == "scrub":
                ticket = self.store.soft_deleted(int(ident))
                if ticket is not None:
                    self.store.purge(ticket, due, "retention")
                    if self.config.scrub_sends_webhook:
                        self.hooks.emit(PERMANENTLY_DELETED_EVENT, ticket, SYSTEM_ACTOR, due)
            elif kind == "expire":
                self.jobs.pop(str(ident), None)
            elif kind == "archive":
                self.archive.archive_due(int(ident), due)
        self.archive.tick(now)

    def reset_state(self) -> None:
        """Forget tickets and jobs (the configuration stays: a fixture may have set it)."""
        self.store.clear()
        self.jobs.clear()
        self._active_jobs.clear()
        self._purging.clear()
        self._due.clear()
        self._job_rng = random.Random(self.seed)
        self.archive.clear()
        self.hooks.clear()

    def not_found(self, request: Request) -> Response:
        return Response(404, {"error": "InvalidEndpoint", "description": "Not found"})

    def error_response(self, status: int, code: str, description: str) -> Response:
        return Response(status, {"error": code, "description": description})

    def config_state(self) -> dict[str, Any]:
        return self.config.to_dict()

    def configure(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Change the configuration (see `ZendeskConfig`; `plan` sets the account limit)."""
        with self.lock:
            archive_after = self.config.archive_after_days
            self.config.update(body)
            self.limiter.enabled = self.config.rate_limits
            if self.config.archive_after_days != archive_after:
                self.archive.reschedule_all()
            self.hooks.configured()
            return self.config.to_dict()

    # ---- admin: seed and act ---------------------------------------------------------------

    def admin_seed(self, body: Any) -> Any:
        """`{"tickets": [...], "count": N, "template": {...}}` -> `{"ids": [...]}`.

        Ticket fields as for the import API, plus `state` (`active`, `deleted`, `purged`),
        `deleted_at` and `actor` `{id, name}`, and `archived: true` (a closed ticket, archived
        at once; a closed ticket whose `updated_at` is older than `archive_after_days` is
        archived by the next tick anyway). `count` copies `template`, replacing `{n}` (0..)
        and `{id}` in its strings.
        """
        if not isinstance(body, dict):
            raise ValueError("seed: expected a JSON object")
        ids = self.seed_tickets(
            body.get("tickets") or [],
            count=int(body.get("count") or 0),
            template=body.get("template"),
        )
        return {"ids": ids, "count": len(ids)}

    def seed_tickets(
        self,
        tickets: Sequence[Mapping[str, Any]] = (),
        *,
        count: int = 0,
        template: Mapping[str, Any] | None = None,
    ) -> list[int]:
        """Bulk-create tickets at once (no job, no limits); returns their ids in order."""
        with self.lock:
            now = self.clock.now()
            self.tick(now)
            ids: list[int] = []
            specs: list[Mapping[str, Any]] = list(tickets)
            for spec in specs:
                ids.append(self._seed_one(spec, now))
            base = dict(template or {"subject": "Ticket {n}"})
            for n in range(count):
                next_id = str(self.store.next_id)
                spec = {
                    k: v.replace("{n}", str(n)).replace("{id}", next_id)
                    if isinstance(v, str)
                    else v
                    for k, v in base.items()
                }
                ids.append(self._seed_one(spec, now))
            return ids

    def _seed_one(self, spec: Mapping[str, Any], now: datetime) -> int:
        state = spec.get("state", "active")
        if state not in ("active", "deleted", "purged"):
            raise ValueError(f"seed: unknown state {state!r}")
        skip = ("state", "deleted_at", "actor", "archived")
        clean = {k: v for k, v in spec.items() if k not in skip}
        ticket = self.store.create(now=now, **_ticket_fields(clean))
        if spec.get("archived") and (state != "active" or not self.archive.archive_now(ticket)):
            raise ValueError("seed: only an active closed ticket can be archived")
        if state != "active":
            at = parse_iso(str(spec["deleted_at"])) if spec.get("deleted_at") else now
            actor = _actor(spec.get("actor")) or self._api_user()
            self._soft_delete(ticket, at, actor)
            if state == "purged":
                self._purge_ticket(ticket, at, actor)
        return ticket.id

    def admin_act(self, body: Any) -> Any:
        """`{"agent": {"id", "name"}, "action": "delete|restore|purge|merge|update|archive",
        "ids": [...], "into": id (merge), "fields": {...} (update)}`."""
        if not isinstance(body, dict):
            raise ValueError("act: expected a JSON object")
        return self.agent_act(
            str(body.get("action", "")),
            [int(i) for i in body.get("ids") or []],
            agent=_actor(body.get("agent")),
            into=int(body["into"]) if body.get("into") is not None else None,
            fields=body.get("fields"),
        )

    def agent_act(
        self,
        action: str,
        ids: Sequence[int],
        *,
        agent: tuple[int, str] | None = None,
        into: int | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> dict[str, list[int]]:
        """Act at once as an agent in the Zendesk UI would; returns done and skipped ids.

        `purge` of a live ticket deletes then purges it (a hard delete); `merge` closes the
        sources into `into` (a merge is not a deletion); `update` sets ticket fields;
        `archive` archives a closed ticket now. An archived ticket is read-only: `delete` or
        `purge` removes it for good (never in the deleted list), the rest skip it.
        """
        with self.lock:
            now = self.clock.now()
            self.tick(now)
            actor = agent or self._api_user()
            done: list[int] = []
            skipped: list[int] = []
            if action == "merge":
                if into is None or self.store.live(into) is None:
                    raise HttpError(404, dict(NOT_FOUND))
            elif action not in ("delete", "restore", "purge", "update", "archive"):
                raise ValueError(f"act: unknown action {action!r}")
            for ticket_id in ids:
                if self._act_one(action, ticket_id, now, actor, into, fields or {}):
                    done.append(ticket_id)
                else:
                    skipped.append(ticket_id)
            return {"done": done, "skipped": skipped}

    def _act_one(
        self,
        action: str,
        ticket_id: int,
        now: datetime,
        actor: tuple[int, str],
        into: int | None,
        changes: Mapping[str, Any],
    ) -> bool:
        store = self.store
        live = store.live(ticket_id)
        deleted = store.soft_deleted(ticket_id)
        if live is not None and live.archived:
            if action not in ("delete", "purge"):
                return False
            self.archive.delete_archived(live, now, actor)
        elif action == "archive" and live:
            return self.archive.archive_now(live)
        elif action == "delete" and live:
            self._soft_delete(live, now, actor)
        elif action == "restore" and deleted:
            self._restore_ticket(deleted, now, actor)
        elif action == "purge" and (live or deleted):
            ticket = live or deleted
            assert ticket is not None
            if live:
                self._soft_delete(live, now, actor)
            self._purge_ticket(ticket, now, actor)
        elif action == "merge" and live and ticket_id != into:
            live.merged_into = into
            store.update(live, now, status="closed")
        elif action == "update" and live:
            store.update(live, now, **_ticket_fields(changes, partial=True))
        else:
            return False
        return True

    # ---- Python helpers --------------------------------------------------------------------

    def ticket_state(self, ticket_id: int) -> str | None:
        """`active`, `deleted`, `purged`, or None for an id never created."""
        with self.lock:
            self.tick(self.clock.now())
            ticket = self.store.tickets.get(ticket_id)
            return ticket.state if ticket else None

    def get_ticket(self, ticket_id: int) -> Ticket | None:
        """The simulator's own record (read it, do not change it)."""
        with self.lock:
            self.tick(self.clock.now())
            return self.store.tickets.get(ticket_id)

    def finish_jobs(self) -> int:
        """Advance the clock until every queued or working job is done; returns how many."""
        with self.lock:
            pending = [self.jobs[j].done_at for j in self._active_jobs if j in self.jobs]
        if not pending:
            return 0
        wait = (max(pending) - self.clock.now()).total_seconds()
        self.advance(max(0.0, wait))
        return len(pending)

    # ---- helpers ---------------------------------------------------------------------------

    def _api_user(self) -> tuple[int, str]:
        return (self.config.api_user_id, self.config.api_user_name)

    def schedule_due(self, key: tuple[str, str | int], at: datetime) -> None:
        """Apply `key` once the clock reaches `at` (see `tick`)."""
        self._due.push(key, at)

    def api_url(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        """An absolute API URL; list values repeat their parameter."""
        suffix = "?" + urlencode(query, doseq=True) if query else ""
        return f"{self.base_url}/api/v2/{path}{suffix}"

    def _soft_delete(self, ticket: Ticket, at: datetime, actor: tuple[int, str]) -> None:
        """Move a live (not archived) ticket to the deleted list; logged, scrub scheduled."""
        self.store.soft_delete(ticket, at, actor)
        self._schedule_scrub(ticket)
        self.archive.log("destroy", actor, ticket.id, SOFT_DELETED, at)
        self.hooks.emit(SOFT_DELETED_EVENT, ticket, actor, at)

    def _restore_ticket(self, ticket: Ticket, at: datetime, actor: tuple[int, str]) -> None:
        self.store.restore(ticket, at)
        self._due.discard(("scrub", ticket.id))
        self.archive.log("update", actor, ticket.id, RESTORED, at)
        self.hooks.emit(UNDELETED_EVENT, ticket, actor, at)

    def _purge_ticket(self, ticket: Ticket, at: datetime, actor: tuple[int, str]) -> None:
        """A permanent deletion on request (the 30-day scrub is not logged: assumed)."""
        self.store.purge(ticket, at, "user")
        self._due.discard(("scrub", ticket.id))
        self.archive.log("destroy", actor, ticket.id, PERMANENTLY_DELETED, at)
        self.hooks.emit(PERMANENTLY_DELETED_EVENT, ticket, actor, at)

    def _schedule_scrub(self, ticket: Ticket) -> None:
        assert ticket.deleted_at is not None
        due = ticket.deleted_at + timedelta(days=self.config.scrub_days)
        self._due.push(("scrub", ticket.id), due)

    def _url(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        suffix = "?" + urlencode(query) if query else ""
        return f"{self.base_url}/api/v2/{path}{suffix}"

    def _ids(self, request: Request, name: str = "ids") -> list[int]:
        raw = ",".join(request.args(name))
        if not raw.strip():
            raise HttpError(
                400, {"error": "InvalidValue", "description": f"Parameter {name} is required"}
            )
        parts = [p.strip() for p in raw.split(",") if p.strip()]
        if len(parts) > self.config.max_ids:
            raise HttpError(400, _too_many(name, self.config.max_ids))
        try:
            ids = [int(p) for p in parts]
        except ValueError:
            raise HttpError(
                400, {"error": "InvalidValue", "description": f"Parameter {name} must be ids"}
            ) from None
        return list(dict.fromkeys(ids))

    def _ticket_id(self, request: Request) -> int:
        try:
            return int(request.params["id"])
        except ValueError:
            raise HttpError(404, dict(NOT_FOUND)) from None

    @property
    def render(self) -> TicketJson:
        """The ticket writer for this simulator's base URL (known once started)."""
        api = f"{self.base_url}/api/v2"
        if self._render is None or self._render_api != api:
            self._render, self._render_api = TicketJson(api), api
        return self._render

    def _ticket_json(self, ticket: Ticket) -> dict[str, Any]:
        """The ticket as the API shows it (see `TicketJson`)."""
        return self.render.one(ticket)

    # ---- tickets ---------------------------------------------------------------------------

    def _me(self, request: Request) -> Response:
        """The authenticated user: `bridge check` tells credentials from rights with it."""
        user_id, name = self._api_user()
        return Response(
            200,
            {
                "user": {
                    "id": user_id,
                    "url": f"{self.base_url}/api/v2/users/{user_id}.json",
                    "name": name,
                    "email": self.email,
                    "role": "admin",
                    "active": True,
                }
            },
        )

    def _show(self, request: Request) -> Response:
        ticket = self.store.live(self._ticket_id(request))
        if ticket is None:
            raise HttpError(404, dict(NOT_FOUND))
        return self._one_ticket(200, ticket)

    def _one_ticket(self, status: int, ticket: Ticket) -> Response:
        body = '{"ticket":' + self.render.text(ticket) + "}"
        return Response(status, body.encode(), {"Content-Type": JSON_TYPE})

    def _show_many(self, request: Request) -> Response:
        """Live tickets in request order, in the recorded envelope: `next_page` and
        `previous_page` null and `count` the number shown (zenpy cassettes
        `TestTicketCreateUpdateDelete.*-delete-many`: `"next_page":null,
        "previous_page":null,"count":100`)."""
        shown = self.store.live if self.config.archived_in_show_many else self.store.listed
        found = [t for t in (shown(i) for i in self._ids(request)) if t is not None]
        text = self.render.text
        rest = {"next_page": None, "previous_page": None, "count": len(found)}
        return json_page("tickets", [text(t) for t in found], rest)

    def _list_tickets(self, request: Request) -> Response:
        """`?external_id=` (live tickets only); without it, live tickets by id, in cursor
        pages with `page[size]` (recorded: zenpy `TestTicketsPagination.test_pagination`; the
        way node-zendesk lists them) or offset pages."""
        external_id = request.arg("external_id")
        if external_id is not None:
            matches = self.store.live_by_external(external_id)
            rest = {"count": len(matches), "next_page": None, "previous_page": None}
            return json_page("tickets", list(map(self.render.text, matches)), rest)
        if _cursor_mode(request):
            keys = self.store.listed_ids
            return self._cursor_page(request, keys, "tickets", self.render.text, False, {})
        # offset pages count every listed ticket: a scan (nothing in bridge lists tickets)
        live = [t for t in self.store.tickets.values() if t.state == "active" and not t.archived]
        page, per_page = _offset_params(request)
        chunk = live[(page - 1) * per_page : page * per_page]
        query = {"page": page + 1, "per_page": per_page}
        more = page * per_page < len(live)
        prev = {"page": page - 1, "per_page": per_page}
        envelope = {
            "count": len(live),
            "next_page": self._url("tickets.json", query) if more else None,
            "previous_page": self._url("tickets.json", prev) if page > 1 else None,
        }
        return json_page("tickets", list(map(self.render.text, chunk)), envelope)

    def _destroy(self, request: Request) -> Response:
        """A soft delete; of an archived ticket, a permanent deletion (documented: deleted
        archived tickets never reach the deleted list), logged as an irreversible request."""
        ticket = self.store.live(self._ticket_id(request))
        if ticket is None:
            raise HttpError(404, dict(NOT_FOUND))
        now = self.clock.now()
        if ticket.archived:
            route = request.route.name if request.route else f"{request.method} {request.path}"
            self.purges.record(route, now, [(ticket.id, "active", None)], outcome="done")
            self.archive.delete_archived(ticket, now, request.principal)
        else:
            self._soft_delete(ticket, now, request.principal)
        return Response(204)

    def _destroy_many(self, request: Request) -> Response:
        """Queues a soft-delete job; archived ids in it are deleted for good, so the
        request is logged for them as an irreversible one."""
        ids = self._ids(request)
        live = [t for t in (self.store.live(i) for i in ids) if t is not None]
        if not live:
            raise HttpError(404, dict(NOT_FOUND))
        job = self._new_job(request, "soft_delete", JOB_TYPE_SOFT_DELETE, ids, total=len(ids))
        archived = [(t.id, "active", None) for t in live if t.archived]
        if archived:
            route = request.route.name if request.route else f"{request.method} {request.path}"
            self.purges.record(route, job.created_at, archived, job_id=job.id)
        return Response(200, {"job_status": self._job_json(job)})

    # ---- deleted tickets -------------------------------------------------------------------

    def _restore(self, request: Request) -> Response:
        ticket = self.store.soft_deleted(self._ticket_id(request))
        if ticket is None:
            raise HttpError(404, dict(NOT_FOUND))
        self._restore_ticket(ticket, self.clock.now(), request.principal)
        return Response(200, {})

    def _restore_many(self, request: Request) -> Response:
        tickets = [t for t in (self.store.soft_deleted(i) for i in self._ids(request)) if t]
        if not tickets:
            raise HttpError(404, dict(NOT_FOUND))
        now = self.clock.now()
        for ticket in tickets:
            self._restore_ticket(ticket, now, request.principal)
        return Response(200, {})

    def _purge_one(self, request: Request) -> Response:
        ticket_id = self._ticket_id(request)
        if self.store.soft_deleted(ticket_id) is None:
            raise HttpError(404, dict(NOT_FOUND))
        return self._queue_purge(request, [ticket_id])

    def _purge_many(self, request: Request) -> Response:
        ids = self._ids(request)
        if not any(self.store.soft_deleted(i) for i in ids):
            raise HttpError(404, dict(NOT_FOUND))
        return self._queue_purge(request, ids)

    def _queue_purge(self, request: Request, ids: list[int]) -> Response:
        """Queue the permanent deletion job and log the accepted request, per id, noting
        the ids already purged or already in a purge job under way (duplicates)."""
        seen = [(i, *self._purge_prior(i)) for i in ids]
        job = self._new_job(request, "purge", JOB_TYPE_PURGE, ids, total=None)
        route = request.route.name if request.route else f"{request.method} {request.path}"
        self.purges.record(route, job.created_at, seen, job_id=job.id)
        for ticket_id in ids:
            self._purging.setdefault(ticket_id, {})[job.id] = None
        return Response(200, {"job_status": self._job_json(job)})

    def _purge_prior(self, ticket_id: int) -> tuple[str | None, PurgePrior | None]:
        """The ticket's state, and why purging it now would be a duplicate (or None)."""
        ticket = self.store.tickets.get(ticket_id)
        state = ticket.state if ticket is not None else None
        if state == "purged":
            return state, "purged"
        if self._purging.get(ticket_id):
            return state, "queued"
        return state, None

    def _deleted_list(self, request: Request) -> Response:
        sort_by = request.arg("sort_by") or "id"
        sort_order = (request.arg("sort_order") or "asc").lower()
        if sort_by not in ("id", "subject", "deleted_at"):
            raise HttpError(400, _invalid("sort_by must be one of id, subject, deleted_at"))
        if sort_order not in ("asc", "desc"):
            raise HttpError(400, _invalid("sort_order must be asc or desc"))
        keys = self.store.deleted_keys(sort_by)
        descending = sort_order == "desc"
        sort_query = {
            k: v
            for k, v in (
                ("sort_by", request.arg("sort_by")),
                ("sort_order", request.arg("sort_order")),
            )
            if v
        }
        if _cursor_mode(request):
            return self._cursor_page(
                request, keys, "deleted_tickets", self._deleted_text, descending, sort_query
            )
        page, per_page = _offset_params(request)
        if (page - 1) * per_page >= OFFSET_RECORD_LIMIT:
            raise HttpError(
                400,
                {
                    "error": "InvalidPaginationParameter",
                    "description": "Offset pagination is limited to the first 10000 records; "
                    "use cursor pagination",
                },
            )
        chunk = offset_slice(keys, page=page, per_page=per_page, descending=descending)
        count = len(keys)
        nxt = {"page": page + 1, "per_page": per_page, **sort_query}
        prv = {"page": page - 1, "per_page": per_page, **sort_query}
        rest = {
            "count": count,
            "next_page": self._url("deleted_tickets.json", nxt)
            if page * per_page < count
            else None,
            "previous_page": self._url("deleted_tickets.json", prv) if page > 1 else None,
        }
        items = [self._deleted_text(self.store.tickets[k[-1]]) for k in chunk]
        return json_page("deleted_tickets", items, rest)

    def _deleted_text(self, ticket: Ticket) -> str:
        return json_text(self.store.deleted_item(ticket))

    def _cursor_page(
        self,
        request: Request,
        keys: SortedKeys,
        name: str,
        item: Callable[[Ticket], str],
        descending: bool,
        sort_query: dict[str, str],
    ) -> Response:
        """One cursor page of `name` (`tickets`, `deleted_tickets`) over ascending `keys`,
        whose last element is the ticket id; `item` writes a ticket as JSON text."""
        size = _clamp_int(request.arg("page[size]"), default=100, low=1, high=100)
        try:
            after = decode_cursor(a) if (a := request.arg("page[after]")) else None
            before = decode_cursor(b) if (b := request.arg("page[before]")) else None
        except ValueError:
            raise HttpError(
                400, _invalid("page[after]/page[before] is not a valid cursor")
            ) from None
        chunk, has_more = page_keys(
            keys, size=size, descending=descending, after=after, before=before
        )
        first = encode_cursor(chunk[0]) if chunk else None
        last = encode_cursor(chunk[-1]) if chunk else None
        base = {"page[size]": size, **sort_query}
        # a page with rows links both ways and names both cursors, even on the first page
        # and with has_more false (recorded: zenpy `TestTicketsPagination.test_pagination`,
        # `TestDeletedTickets.test_values` on /tickets); `has_more` says whether to go on
        rest = {
            "meta": {"has_more": has_more, "after_cursor": last, "before_cursor": first},
            "links": {
                "prev": self._url(f"{name}.json", {**base, "page[before]": first})
                if first
                else None,
                "next": self._url(f"{name}.json", {**base, "page[after]": last}) if last else None,
            },
        }
        return json_page(name, [item(self.store.tickets[k[-1]]) for k in chunk], rest)

    # ---- incremental export ----------------------------------------------------------------

    def _export(self, request: Request) -> Response:
        cfg = self.config
        per_page = _clamp_int(
            request.arg("per_page"),
            default=cfg.export_max_per_page,
            low=1,
            high=cfg.export_max_per_page,
        )
        cursor = request.arg("cursor")
        start_time = request.arg("start_time")
        now = self.clock.now()
        key: tuple[int, int] | None = None
        if cursor:
            try:
                key = parse_export_cursor(cursor)
            except ValueError:
                # node-zendesk's exportCursor(start) sends `cursor=undefined` beside the
                # start_time for its first page: with a start_time, a cursor that is no
                # cursor is ignored (assumed, as the client works against Zendesk); alone,
                # it is refused
                if start_time is None:
                    raise HttpError(400, _invalid("cursor is invalid")) from None
        if key is not None:
            cursor_read = True
        elif start_time is not None:
            key, cursor_read = (_start_time(start_time, now), -1), False
        else:
            raise HttpError(400, _invalid("start_time or cursor is required"))
        exclude_deleted = (request.arg("exclude_deleted") or "").lower() in ("true", "1")
        tickets, more = self.store.stream_after(key, per_page)
        after_key = (tickets[-1].generated_timestamp, tickets[-1].id) if tickets else key
        if after_key[1] < 0:  # nothing read yet: keep the start position
            after_key = (after_key[0] - 1, 2**62)
        shown = [t for t in tickets if not (exclude_deleted and t.state != "active")]
        after_cursor = export_cursor(after_key)
        # the first page read by start_time has no before cursor (recorded: zenpy
        # `TicketsIncrementalTest.test_get_values`, `"before_url":null,"before_cursor":null`);
        # a page read by cursor names its first row's (assumed)
        before_cursor = (
            export_cursor((tickets[0].generated_timestamp, tickets[0].id))
            if tickets and cursor_read
            else None
        )
        page_query = {"per_page": per_page} if request.arg("per_page") else {}
        return json_page(
            "tickets",
            list(map(self.render.text, shown)),
            {
                "after_cursor": after_cursor,
                "after_url": self._url(
                    "incremental/tickets/cursor.json", {"cursor": after_cursor, **page_query}
                ),
                "before_cursor": before_cursor,
                "before_url": self._url(
                    "incremental/tickets/cursor.json", {"cursor": before_cursor, **page_query}
                )
                if before_cursor
                else None,
                "end_of_stream": not more,
            },
        )

    def _export_by_time(self, request: Request) -> Response:
        """The time-based export: tickets whose `generated_timestamp` is at or after the
        integer `start_time`, in the recorded envelope `tickets, count, end_of_stream,
        next_page, end_time` (zenpy `TicketsIncrementalTest.test_get_values`). `next_page`
        asks again from `end_time`, the last row's timestamp, so rows of that second repeat
        (Zendesk documents the duplicates)."""
        cfg = self.config
        per_page = _clamp_int(
            request.arg("per_page"),
            default=cfg.export_max_per_page,
            low=1,
            high=cfg.export_max_per_page,
        )
        raw = request.arg("start_time")
        if raw is None:
            raise HttpError(400, _invalid("start_time is required"))
        stamp = _start_time(raw, self.clock.now())
        exclude_deleted = (request.arg("exclude_deleted") or "").lower() in ("true", "1")
        tickets, more = self.store.stream_after((stamp, -1), per_page)
        end_time = tickets[-1].generated_timestamp if tickets else stamp
        shown = [t for t in tickets if not (exclude_deleted and t.state != "active")]
        page_query: dict[str, Any] = {"start_time": end_time}
        if request.arg("per_page"):
            page_query["per_page"] = per_page
        return json_page(
            "tickets",
            list(map(self.render.text, shown)),
            {
                "count": len(shown),
                "end_of_stream": not more,
                "next_page": self._url("incremental/tickets.json", page_query),
                "end_time": end_time,
            },
        )

    # ---- imports ---------------------------------------------------------------------------

    def _import_one(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("ticket"), dict):
            raise HttpError(400, _invalid("a ticket object is required"))
        spec = _validated_import(body["ticket"])
        ticket = self.store.create(now=self.clock.now(), **spec)
        if _archive_immediately(request):
            self.archive.archive_now(ticket)
        return self._one_ticket(201, ticket)

    def _import_many(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("tickets"), list):
            raise HttpError(400, _invalid("a tickets array is required"))
        specs = body["tickets"]
        if len(specs) > self.config.max_ids:
            raise HttpError(400, _too_many("", self.config.max_ids))
        payload = [dict(_validated_import(s)) for s in specs]
        job = self._new_job(
            request, "import", JOB_TYPE_IMPORT, [], total=len(payload), payload=payload
        )
        job.archive = _archive_immediately(request)
        return Response(200, {"job_status": self._job_json(job)})

    # ---- jobs ------------------------------------------------------------------------------

    def _new_job(
        self,
        request: Request,
        kind: JobKind,
        job_type: str,
        ids: list[int],
        *,
        total: int | None,
        payload: list[dict[str, Any]] | None = None,
    ) -> Job:
        cfg = self.config
        now = self.clock.now()
        if len(self._active_jobs) >= cfg.max_jobs:
            first_done = min(self.jobs[j].done_at for j in self._active_jobs)
            wait = max(1, math.ceil((first_done - now).total_seconds()))
            raise HttpError(
                429,
                {
                    "error": "TooManyJobs",
                    "description": f"Number of allowed concurrent jobs ({cfg.max_jobs}) exceeded",
                },
                {"Retry-After": str(wait)},
            )
        items = len(payload) if payload is not None else len(ids)
        start_at = now + timedelta(seconds=cfg.job_queue_seconds)
        done_at = start_at + timedelta(seconds=cfg.job_base_seconds + cfg.job_item_seconds * items)
        route_name = request.route.name if request.route else None
        fail = (
            self.faults.take(request.method, request.path, route_name, kinds={"job_failed"})
            is not None
        )
        job = Job(
            id=f"V3-{self._job_rng.getrandbits(128):032x}",
            kind=kind,
            job_type=job_type,
            ids=ids,
            payload=payload or [],
            total=total,
            created_at=now,
            start_at=start_at,
            done_at=done_at,
            actor=request.principal or self._api_user(),
            fail=fail,
        )
        self.jobs[job.id] = job
        self._active_jobs[job.id] = None
        self._due.push(("job", job.id), done_at)
        self._due.push(("expire", job.id), now + timedelta(seconds=cfg.job_ttl_seconds))
        return job

    def _complete_job(self, job_id: str, at: datetime) -> None:
        job = self.jobs.get(job_id)
        self._active_jobs.pop(job_id, None)
        if job is None:
            return
        stamp = at.strftime("%Y-%m-%d %H:%M:%S +0000")
        if job.kind == "purge":
            for ticket_id in job.ids:
                carrying = self._purging.get(ticket_id)
                if carrying is not None:
                    carrying.pop(job_id, None)
                    if not carrying:
                        del self._purging[ticket_id]
        if job.fail:
            job.status, job.message, job.results = "failed", f"Failed at {stamp}", None
            if job.kind in ("purge", "soft_delete"):  # soft delete: its archived ids
                self.purges.settle(job_id, dict.fromkeys(job.ids, "failed"))
            return
        store = self.store
        if job.kind == "soft_delete":
            results: Any = []
            gone: dict[int, str] = {}
            for ticket_id in job.ids:
                ticket = store.live(ticket_id)
                if ticket is None:
                    results.append(_failed_item(ticket_id))
                    continue
                if ticket.archived:  # deleting an archived ticket is for good
                    self.archive.delete_archived(ticket, at, job.actor)
                    gone[ticket_id] = "done"
                else:
                    self._soft_delete(ticket, at, job.actor)
                results.append(
                    {"id": ticket_id, "action": "update", "status": "Updated", "success": True}
                )
            if gone:
                self.purges.settle(job_id, gone)
        elif job.kind == "purge":
            success = True
            outcomes: dict[int, str] = {}
            for ticket_id in job.ids:
                ticket = store.soft_deleted(ticket_id)
                if ticket is None:
                    success = False
                    outcomes[ticket_id] = "skipped"
                    continue
                self._purge_ticket(ticket, at, job.actor)
                outcomes[ticket_id] = "done"
            self.purges.settle(job_id, outcomes)
            results = {"success": success}
        else:
            results = []
            for index, spec in enumerate(job.payload):
                ticket = store.create(now=at, **spec)
                if job.archive:
                    self.archive.archive_now(ticket)
                results.append(
                    {"index": index, "id": ticket.id, "account_id": self.config.account_id}
                )
        job.status, job.message, job.results = "completed", f"Completed at {stamp}", results

    def _job_json(self, job: Job) -> dict[str, Any]:
        now = self.clock.now()
        status, progress, message = job.status, None, job.message
        if status == "queued" and now >= job.start_at:
            status = "working"
            if job.total:
                span = (job.done_at - job.start_at).total_seconds() or 1.0
                done = (now - job.start_at).total_seconds() / span
                progress = min(job.total - 1, int(job.total * done))
                message = f"Working on item #{progress + 1}"
        elif status == "completed":
            progress = job.total
        return {
            "id": job.id,
            "job_type": job.job_type,
            "url": self._url(f"job_statuses/{job.id}.json"),
            "total": job.total,
            "progress": progress,
            "status": status,
            "message": message,
            "results": job.results if status in ("completed", "failed") else None,
        }

    def _visible_job(self, job_id: str) -> Job | None:
        job = self.jobs.get(job_id)
        if job is None:
            return None
        age = (self.clock.now() - job.created_at).total_seconds()
        return job if age >= self.config.job_404_seconds else None

    def _job_show(self, request: Request) -> Response:
        job = self._visible_job(request.params["id"])
        if job is None:
            raise HttpError(404, dict(NOT_FOUND))
        return Response(200, {"job_status": self._job_json(job)})

    def _jobs_show_many(self, request: Request) -> Response:
        raw = ",".join(request.args("ids"))
        wanted = [p.strip() for p in raw.split(",") if p.strip()]
        if not wanted:
            raise HttpError(400, _invalid("Parameter ids is required"))
        if len(wanted) > self.config.max_ids:
            raise HttpError(400, _too_many("ids", self.config.max_ids))
        found = [j for j in (self._visible_job(i) for i in dict.fromkeys(wanted)) if j]
        return Response(200, {"job_statuses": [self._job_json(j) for j in found]})


# ---- module helpers ------------------------------------------------------------------------


#: Unix seconds, optionally with a decimal fraction (only a zero one is read)
_UNIX_SECONDS = re.compile(r"(-?\d+)(?:\.(\d*))?")


def _archive_immediately(request: Request) -> bool:
    """The import parameter `archive_immediately` (OAS `ArchiveImmediately`): closed
    tickets bypass the lifecycle and go straight to the archive."""
    return (request.arg("archive_immediately") or "").lower() in ("true", "1")


def _too_many(name: str, limit: int) -> dict[str, Any]:
    return {
        "error": "TooManyValues",
        "description": f"Parameter {name} cannot specify more than {limit} values",
        "max_count": limit,
    }


def _invalid(description: str) -> dict[str, Any]:
    return {"error": "InvalidValue", "description": description}


def _failed_item(ticket_id: int) -> dict[str, Any]:
    return {
        "id": ticket_id,
        "action": "update",
        "success": False,
        "error": "RecordNotFound",
        "details": "Not found",
    }


def _start_time(raw: str, now: datetime) -> int:
    """An export's `start_time` in whole Unix seconds, not in the future. The OAS types it
    an integer, and a fraction of a second is refused (400); but the Singer `tap-zendesk`
    connector sends `datetime.timestamp()` of whole-second bookmarks, `1704067200.0`, on
    every tickets sync and works against Zendesk, so a zero fraction is read as the integer
    it is. Anything that is not a number is a 400 too."""
    match = _UNIX_SECONDS.fullmatch(raw.strip())
    if match is None:
        raise HttpError(400, _invalid("start_time must be a number of Unix seconds"))
    if (match[2] or "").strip("0"):
        raise HttpError(400, _invalid("start_time must be a whole number of seconds"))
    stamp = int(match[1])
    if stamp > now.timestamp():
        raise HttpError(400, _invalid("start_time is in the future"))
    return stamp


def _cursor_mode(request: Request) -> bool:
    """Whether a listing is asked for cursor pages (any `page[...]` parameter)."""
    return any(k in request.query for k in ("page[size]", "page[after]", "page[before]"))


def _clamp_int(value: str | None, *, default: int, low: int, high: int) -> int:
    if value is None or not value.strip():
        return default
    try:
        number = int(value)
    except ValueError:
        raise HttpError(400, _invalid(f"{value!r} is not a number")) from None
    return max(low, min(high, number))


def _offset_params(request: Request) -> tuple[int, int]:
    page = _clamp_int(request.arg("page"), default=1, low=1, high=10**9)
    per_page = _clamp_int(request.arg("per_page"), default=100, low=1, high=100)
    return page, per_page


def _actor(value: Any) -> tuple[int, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or "id" not in value:
        raise ValueError("agent: expected {id, name}")
    return int(value["id"]), str(value.get("name") or f"Agent {value['id']}")


def _ticket_fields(spec: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Map import/seed JSON onto `TicketStore.create` keywords (ValueError when invalid)."""
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if key in ("subject", "description"):
            out[key] = str(value)
        elif key == "comment" and isinstance(value, dict) and not partial:
            out.setdefault("description", str(value.get("body") or value.get("value") or ""))
        elif key == "comments" and isinstance(value, list) and value and not partial:
            first = value[0] if isinstance(value[0], dict) else {}
            out.setdefault("description", str(first.get("body") or first.get("value") or ""))
        elif key == "status":
            if value not in LIVE_STATUSES:
                raise ValueError(f"status must be one of {', '.join(LIVE_STATUSES)}")
            out["status"] = value
        elif key == "external_id":
            out["external_id"] = None if value is None else str(value)
        elif key in ("created_at", "updated_at") and not partial:
            out[key] = parse_iso(str(value))
        elif key in ("requester_id", "submitter_id", "assignee_id"):
            out[key] = None if value is None else int(value)
        elif key == "priority":
            if value is not None and value not in PRIORITIES:
                raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}")
            out["priority"] = value
        elif key == "type":
            if value is not None and value not in TYPES:
                raise ValueError(f"type must be one of {', '.join(TYPES)}")
            out["type" if partial else "type_"] = value
        elif key == "tags":
            out["tags"] = [str(t) for t in value]
    if not partial and out.get("requester_id") is None:
        out.pop("requester_id", None)
    return out


def _validated_import(spec: Any) -> dict[str, Any]:
    """Import API validation: a 422 RecordInvalid naming the field, like Zendesk's."""
    if not isinstance(spec, dict):
        raise HttpError(400, _invalid("each ticket must be an object"))
    try:
        return _ticket_fields(spec)
    except (ValueError, TypeError) as exc:
        text = str(exc)
        field_name = next((f for f in ("status", "priority", "type") if text.startswith(f)), "base")
        raise HttpError(
            422,
            {
                "error": "RecordInvalid",
                "description": "Record validation errors",
                "details": {field_name: [{"type": "invalid", "description": str(exc)}]},
            },
        ) from None
