"""A SuperOffice Service (CRM Online / on-site WebAPI) simulator for the ticket deletion lifecycle.

Built on `bridge.sandbox.SimulatorBase` (clock, rate limiter, faults, counters, admin
API). The API lives at `{origin}/{tenant}/api/v1/...`; `GET /api/state/{tenant}` and the
system-user exchange `POST /Login/api/PartnerSystemUser/Authenticate` live at the origin, as
on `https://sod.superoffice.com`. Paths match case-insensitively (SuperOffice's do).

Every choice made where SuperOffice's behaviour is unconfirmed is an option here and is
listed in `docs/sandbox.md` ("### SuperOffice").
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs

from bridge.sandbox import (
    HttpError,
    Request,
    Response,
    Route,
    SimClock,
    SimulatorBase,
    parse_iso,
)
from bridge.vendors.superoffice.sim.agents import (
    field,
    list_items,
    list_query,
    query_arg,
)
from bridge.vendors.superoffice.sim.auth import (
    CLAIM_CONTEXT,
    CLAIM_NETSERVER_URL,
    CLAIM_TICKET,
    CLAIM_WEBAPI_URL,
    JwtIssuer,
    LoginError,
    partner_keypair,
    sign_system_user_token,
    verify_signed_system_token,
)
from bridge.vendors.superoffice.sim.dynamic import DYNAMIC_PROVIDER, dynamic_page
from bridge.vendors.superoffice.sim.odata import ODataError
from bridge.vendors.superoffice.sim.patch import (
    PatchConflictError,
    PatchError,
    apply_json_patch,
    apply_merge_patch,
)
from bridge.vendors.superoffice.sim.store import BaseStatus, StoreError, Ticket, TicketStore
from bridge.vendors.superoffice.sim.views import (
    CULTURES,
    ArchiveOptions,
    RowFormat,
    TimeFormat,
    archive_page,
    archive_rows,
    culture_of,
    ticket_entity,
)
from bridge.vendors.superoffice.sim.webhooks import SuperOfficeWebhooksApi

__all__ = ["DELETE_RIGHTS", "SET_DELETED_RESULTS", "SuperOfficeSimulator"]

#: functional-right names answered by `can_delete` in `Agents/Sentry/HasFunctionRight`
#: (deleting requests needs "Service administration"; the right's API name is a guess)
DELETE_RIGHTS: frozenset[str] = frozenset({"ticket-admin", "ticket-delete", "admin-all"})

#: what `SetDeletedStatusByIds` answers: the ids it changed, the requested ids that exist,
#: or the request echoed back (the real meaning of the int array is undocumented)
SET_DELETED_RESULTS: frozenset[str] = frozenset({"changed", "existing", "requested"})

_IDS_KEYS = ("TicketIds", "ids")
_JSON = {"Content-Type": "application/json; charset=utf-8"}


def _ids(value: Any) -> list[int]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list):
        raise HttpError(400, _error("TicketIds must be an array of integers", "ArgumentError"))
    out: list[int] = []
    for item in value:
        try:
            if isinstance(item, bool):
                raise ValueError
            out.append(int(item))
        except (TypeError, ValueError):
            raise HttpError(
                400, _error("TicketIds must be an array of integers", "ArgumentError")
            ) from None
    return out


def _error(message: str, kind: str) -> dict[str, Any]:
    """The simulator's error body (the real shape is UNCONFIRMED; clients must not parse it)."""
    return {"Error": message, "ErrorType": kind, "ErrorSource": "bridge-sandbox"}


class SuperOfficeSimulator(SimulatorBase):
    """One SuperOffice tenant in memory, served over HTTP on 127.0.0.1.

    `DELETE Ticket/{id}` and irreversible requests: on SuperOffice Online (the default,
    `hard_delete=False`) every API delete is a *soft* delete, reversible with
    `UndeleteByIds`; the row only goes when the tenant's retention job runs, which is the
    tenant's policy, not a request. So a default tenant accepts no irreversible request
    and its purge log stays empty (retention purges and the admin `purge` action are not
    requests either). A tenant configured with `hard_delete=True` (on-site setups where the
    endpoint really removes the row; bridge's `DeleteEndpointPurge`) removes the ticket at
    once on `DELETE Ticket/{id}`, and each such accepted request is recorded in the purge
    log (`purge_log()`, `GET /_sandbox/purges`) with outcome ``done``. A repeat of it answers
    404 (the row is gone) and is therefore not accepted: SuperOffice records are never
    duplicates, because there are no purge jobs to be "under way".
    """

    def __init__(
        self,
        *,
        tenant: str = "Cust12345",
        ticket: str = "7T:sandbox",
        app_token: str = "sandbox-app",
        bearer: str = "sandbox-bearer",
        basic: tuple[str, str] | None = ("admin", "sandbox"),
        host: str = "127.0.0.1",
        port: int = 0,
        clock: SimClock | None = None,
        retention_days: float = 14,
        requests_per_second: int | None = 10,
        public_key_pem: str | None = None,
        seed: int = 0,
        system_user_token: str | None = None,
        deleted_readable: bool = True,
        can_delete: bool = True,
        set_deleted_result: str = "changed",
        api_associate_id: int = 9,
        require_app_token: bool = True,
        archive: ArchiveOptions | None = None,
        login_failure_status: int = 200,
        system_token_max_skew: timedelta | None = timedelta(minutes=10),
        jwt_lifetime: timedelta = timedelta(hours=1),
        jwt_private_key_pem: str | None = None,
        hard_delete: bool = False,
        culture: str = "en",
        ticket_log_readable: bool = True,
    ) -> None:
        super().__init__(host=host, port=port, clock=clock, seed=seed)
        if set_deleted_result not in SET_DELETED_RESULTS:
            raise ValueError(f"set_deleted_result must be one of {sorted(SET_DELETED_RESULTS)}")
        self.tenant = tenant
        self.ticket = ticket
        self.app_token = app_token
        self.bearer = bearer
        self.basic = basic
        self.requests_per_second = requests_per_second
        self.public_key_pem = public_key_pem
        self.system_user_token = system_user_token
        self.deleted_readable = deleted_readable
        self.can_delete = can_delete
        self.set_deleted_result = set_deleted_result
        self.api_associate_id = api_associate_id
        self.require_app_token = require_app_token
        #: `DELETE Ticket/{id}` hard-deletes (an irreversible request) instead of soft-deleting
        self.hard_delete = hard_delete
        #: the ticket log can be read through `Archive/dynamic` (False: 403, as for a user
        #: without the rights to it; whether a real API user may read it is UNCONFIRMED)
        self.ticket_log_readable = ticket_log_readable
        self.archive = archive or ArchiveOptions()
        if culture not in CULTURES:
            raise ValueError(f"culture must be one of {sorted(CULTURES)}")
        #: the API user's culture: display text in archive rows unless the request names
        #: another one (`SO-Culture`, then `Accept-Language`)
        self.culture = culture
        self.login_failure_status = login_failure_status
        self.system_token_max_skew = system_token_max_skew
        self.jwt_lifetime = jwt_lifetime
        self.issuer = JwtIssuer(jwt_private_key_pem)
        self.store = TicketStore(
            now=self.clock.now, retention=timedelta(days=retention_days), first_id=1
        )
        #: `Webhook` entities and the ticket events they are sent (sim/webhooks.py)
        self.hooks = SuperOfficeWebhooksApi(self)
        self.store.on_touch = self.hooks.ticket_touched
        self._register_routes()

    # ------------------------------------------------------------------ URLs

    @property
    def base_url(self) -> str:
        """The tenant URL, `http://127.0.0.1:PORT/{tenant}`; the API is at `/api/v1/` below."""
        return f"{self.origin}/{self.tenant}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api"

    @property
    def login_url(self) -> str:
        """The system-user exchange is at `{login_url}/api/PartnerSystemUser/Authenticate`."""
        return f"{self.origin}/Login"

    @property
    def state_url(self) -> str:
        return f"{self.origin}/api/state/{self.tenant}"

    @property
    def retention_days(self) -> float:
        return self.store.retention / timedelta(days=1)

    # ------------------------------------------------------------------ routing

    def _register_routes(self) -> None:
        api = f"/{self.tenant}/api/v1"
        add = self._route
        add("GET", "/api/state/{tenant}", self._state, "GET api/state", auth=False, limited=False)
        add(
            "POST",
            "/Login/api/PartnerSystemUser/Authenticate",
            self._system_user_login,
            "POST Login/PartnerSystemUser/Authenticate",
            auth=False,
            limited=False,
        )
        add(
            "GET",
            "/login/.well-known/jwks",
            lambda r: (200, self.issuer.jwks()),
            "GET login/jwks",
            auth=False,
            limited=False,
        )
        add("POST", f"{api}/Ticket", self._create, "POST Ticket")
        add("GET", f"{api}/Ticket", self._list_tickets, "GET Ticket")
        add("GET", f"{api}/Ticket/{{id}}", self._get, "GET Ticket/{id}")
        add("PATCH", f"{api}/Ticket/{{id}}", self._patch, "PATCH Ticket/{id}")
        add("DELETE", f"{api}/Ticket/{{id}}", self._delete, "DELETE Ticket/{id}")
        agents = f"{api}/Agents/Ticket"
        add(
            "POST",
            f"{agents}/SetDeletedStatusByIds",
            self._set_deleted,
            "POST Agents/Ticket/SetDeletedStatusByIds",
        )
        add(
            "POST",
            f"{agents}/UndeleteByIds",
            self._undelete,
            "POST Agents/Ticket/UndeleteByIds",
        )
        add(
            "POST",
            f"{agents}/DeleteTicketEntity",
            self._delete_entity,
            "POST Agents/Ticket/DeleteTicketEntity",
        )
        add(
            "POST",
            f"{agents}/GetTicketEntity",
            self._get_entity_agent,
            "POST Agents/Ticket/GetTicketEntity",
        )
        add(
            "POST",
            f"{agents}/SaveTicketEntity",
            self._save_entity,
            "POST Agents/Ticket/SaveTicketEntity",
        )
        archive_agent = f"{api}/Agents/Archive"
        add(
            "POST",
            f"{archive_agent}/GetArchiveListByColumns",
            self._archive_list,
            "POST Agents/Archive/GetArchiveListByColumns",
        )
        add(
            "POST",
            f"{archive_agent}/GetArchiveListByColumnsWithHeader",
            self._archive_list,
            "POST Agents/Archive/GetArchiveListByColumnsWithHeader",
        )
        add(
            "POST",
            f"{api}/Agents/Sentry/HasFunctionRight",
            self._has_function_right,
            "POST Agents/Sentry/HasFunctionRight",
        )
        add("GET", f"{api}/Archive/{{provider}}", self._archive, "GET Archive/{provider}")
        add("POST", f"{api}/Archive/{{provider}}", self._archive, "POST Archive/{provider}")
        self.hooks.register(api)

    def _route(
        self,
        method: str,
        pattern: str,
        handler: Any,
        name: str,
        *,
        auth: bool = True,
        limited: bool = True,
    ) -> None:
        self.route(method, pattern.lower(), handler, name=name, auth=auth, limited=limited)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """SuperOffice routes ignore case: match on the lower-cased path."""
        return super().match(method, path.lower())

    # ------------------------------------------------------------------ core hooks

    def authenticate(self, request: Request) -> Response | None:
        header = request.header("authorization") or ""
        scheme, _, credential = header.strip().partition(" ")
        scheme = scheme.lower()
        credential = credential.strip()
        mode: str | None = None
        if scheme == "soticket" and _same(credential, self.ticket):
            app = request.header("so-apptoken")
            if not self.require_app_token or (app is not None and _same(app, self.app_token)):
                mode = "soticket"
        elif scheme == "bearer" and _same(credential, self.bearer):
            mode = "bearer"
        elif scheme == "basic" and self.basic is not None:
            try:
                user, _, password = base64.b64decode(credential).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user = password = ""
            if _same(user, self.basic[0]) and _same(password, self.basic[1]):
                mode = "basic"
        if mode is None:
            return Response(
                401,
                _error("Authentication failed: invalid or missing credentials", "Unauthorized"),
                {"WWW-Authenticate": 'SOTicket, Bearer, Basic realm="SuperOffice"'},
            )
        request.principal = {"mode": mode, "associate_id": self.api_associate_id}
        return None

    def rate_limit(self, request: Request, route: Route) -> Response | None:
        if not self.requests_per_second:
            return None
        decision = self.limiter.hit(f"tenant:{self.tenant.lower()}", self.requests_per_second, 1.0)
        if decision.allowed:
            return None
        return Response(
            429,
            _error("Too many requests; slow down", "TooManyRequests"),
            {"Retry-After": decision.retry_after_header},
        )

    def tick(self, now: datetime) -> None:
        self.store.sweep()

    def _finish(self, response: Response, request: Request) -> tuple[int, bytes, dict[str, str]]:
        """Every answer carries `Date`, the tenant's clock (the simulated one), as an HTTP
        server's does: the adapter's change cursor reads the tenant's time from it."""
        status, payload, headers = super()._finish(response, request)
        headers.setdefault("Date", format_datetime(self.clock.now().astimezone(UTC), usegmt=True))
        return status, payload, headers

    def not_found(self, request: Request) -> Response:
        match = re.match(r"^/([^/]+)/api/", request.path)
        if match and match.group(1).lower() not in {self.tenant.lower(), "login"}:
            return self.error_response(421, "MisdirectedRequest", "Tenant is not on this host")
        return self.error_response(404, "NotFound", "No such resource")

    def error_response(self, status: int, code: str, description: str) -> Response:
        return Response(status, _error(description, code))

    def reset_state(self) -> None:
        self.store.reset()
        self.hooks.clear()

    # ------------------------------------------------------------------ helpers

    def _actor(self, request: Request) -> int:
        principal = request.principal
        if isinstance(principal, dict):
            return int(principal.get("associate_id", self.api_associate_id))
        return self.api_associate_id

    def _fmt(self, request: Request) -> TimeFormat:
        return TimeFormat.from_header(request.header("so-timezone"))

    def _visible(self, ticket_id_text: str) -> Ticket:
        try:
            ticket_id = int(ticket_id_text)
        except ValueError:
            raise HttpError(404, _error("Ticket not found", "NotFound")) from None
        ticket = self.store.get(ticket_id)
        if ticket is None or (
            not self.deleted_readable and ticket.base_status is BaseStatus.DELETED
        ):
            raise HttpError(404, _error(f"Ticket {ticket_id} not found", "NotFound"))
        return ticket

    def _require_delete_right(self) -> None:
        if not self.can_delete:
            raise HttpError(
                403,
                _error("The user lacks the functional right to delete requests", "Forbidden"),
            )

    def _entity(self, ticket: Ticket, request: Request) -> dict[str, Any]:
        return ticket_entity(ticket, self.api_url, self._fmt(request))

    @staticmethod
    def _body_object(request: Request) -> dict[str, Any]:
        body = request.json()
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise HttpError(400, _error("Expected a JSON object", "ArgumentError"))
        return body

    def _ids_from(self, request: Request) -> list[int]:
        body = self._body_object(request) if request.body.strip() else {}
        for key in _IDS_KEYS:
            if field(body, key) is not None:
                return _ids(field(body, key))
        for key in _IDS_KEYS:
            if query_arg(request, key) is not None:
                return _ids(query_arg(request, key))
        raise HttpError(400, _error("TicketIds is required", "ArgumentError"))

    # ------------------------------------------------------------------ tenant & login

    def _state(self, request: Request) -> tuple[int, Any]:
        if request.params.get("tenant", "").lower() != self.tenant.lower():
            return 404, _error("Unknown tenant", "NotFound")
        valid = self.clock.now() + timedelta(hours=1)
        return 200, {
            "ContextIdentifier": self.tenant,
            "Endpoint": self.base_url,
            "State": "Running",
            "IsRunning": True,
            "ValidUntil": valid.isoformat().replace("+00:00", "Z"),
            "Api": self.api_url,
        }

    def _login_failed(self, message: str) -> tuple[int, Any]:
        return self.login_failure_status, {
            "IsSuccessful": False,
            "Token": None,
            "ErrorMessage": message,
        }

    def _system_user_login(self, request: Request) -> tuple[int, Any]:
        body = self._body_object(request)
        signed = body.get("SignedSystemToken")
        if not isinstance(signed, str) or not signed:
            return 400, _error("SignedSystemToken is required", "ArgumentError")
        if self.public_key_pem is None:
            return self._login_failed("System user login is not configured for this application")
        if not _same(str(body.get("ApplicationToken") or ""), self.app_token):
            return self._login_failed("Unknown application token")
        if str(body.get("ContextIdentifier") or "").lower() != self.tenant.lower():
            return self._login_failed("Unknown context identifier")
        if str(body.get("ReturnTokenType") or "JWT").upper() != "JWT":
            return self._login_failed("Only ReturnTokenType JWT is supported")
        try:
            token = verify_signed_system_token(
                signed, self.public_key_pem, self.clock.now(), self.system_token_max_skew
            )
        except LoginError as exc:
            return self._login_failed(str(exc))
        if self.system_user_token is not None and not _same(token, self.system_user_token):
            return self._login_failed("Unknown system user token")
        claims = {
            CLAIM_TICKET: self.ticket,
            CLAIM_CONTEXT: self.tenant,
            CLAIM_WEBAPI_URL: f"{self.api_url}/",
            CLAIM_NETSERVER_URL: f"{self.base_url}/Remote/Services88/",
        }
        jwt_token = self.issuer.issue(claims, now=self.clock.now(), lifetime=self.jwt_lifetime)
        return 200, {"IsSuccessful": True, "Token": jwt_token, "ErrorMessage": ""}

    # ------------------------------------------------------------------ tickets

    def _create(self, request: Request) -> tuple[int, Any]:
        ticket = self._create_from(self._body_object(request), self._actor(request))
        return 200, self._entity(ticket, request)

    def _create_from(self, body: Mapping[str, Any], actor: int) -> Ticket:
        """A new ticket from a TicketEntity body (`POST Ticket`, `SaveTicketEntity` without
        an id): Title, Status or BaseStatus, OwnedBy; property names in any case."""
        title = field(body, "Title")
        if not isinstance(title, str):
            raise HttpError(400, _error("Title is required", "ArgumentError"))
        try:
            status = field(body, "Status")
            base_label = field(body, "BaseStatus")
            if status is None and isinstance(base_label, str):
                base = BaseStatus.from_label(base_label)
                status = self.store.default_status(base).status_id
            if status is not None and self.store.resolve_status(status).base in {
                BaseStatus.DELETED,
                BaseStatus.MERGED,
            }:
                raise HttpError(
                    400, _error("A new ticket cannot be deleted or merged", "ArgumentError")
                )
            owner = field(field(body, "OwnedBy"), "AssociateId")
            return self.store.create(
                title=title,
                status=status,
                owned_by=int(owner) if owner is not None else 0,
                created_by=actor,
            )
        except (StoreError, TypeError, ValueError) as exc:
            raise HttpError(400, _error(str(exc), "ArgumentError")) from None

    def _get(self, request: Request) -> tuple[int, Any]:
        return 200, self._entity(self._visible(request.params["id"]), request)

    def _list_tickets(self, request: Request) -> tuple[int, Any]:
        return self._archive_answer(request, "Ticket")

    def _patch(self, request: Request) -> tuple[int, Any]:
        ticket = self._visible(request.params["id"])
        self._check_unmodified_since(request, ticket)
        patch = request.json()
        content_type = (request.header("content-type") or "").lower()
        current = ticket_entity(ticket, self.api_url, TimeFormat())
        try:
            if isinstance(patch, list) or "json-patch" in content_type:
                updated = apply_json_patch(current, patch)
            elif isinstance(patch, dict):
                updated = apply_merge_patch(current, patch)
            else:
                return 400, _error("Expected a JSON Patch array or a merge patch", "ArgumentError")
        except PatchConflictError as exc:
            return 409, _error(str(exc), "Conflict")
        except PatchError as exc:
            return 400, _error(str(exc), "ArgumentError")
        if not isinstance(updated, dict):
            return 400, _error("The patch must leave an object", "ArgumentError")
        try:
            self._apply_entity_changes(ticket, current, updated, self._actor(request))
        except StoreError as exc:
            return 400, _error(str(exc), "ArgumentError")
        return 200, self._entity(ticket, request)

    def _apply_entity_changes(
        self, ticket: Ticket, before: dict[str, Any], after: dict[str, Any], actor: int
    ) -> None:
        """Read back the writable fields (Title, Status, BaseStatus, OwnedBy) of a patched
        entity; read-only fields are ignored, as SuperOffice ignores them."""
        title = field(after, "Title")
        status = None
        new_status = field(after, "Status")
        old_status_id = ticket.status.status_id
        if isinstance(new_status, dict):
            raw = field(new_status, "TicketStatusId")
            if raw is not None and raw != old_status_id:
                status = self.store.resolve_status(raw)
        elif new_status is not None and new_status != field(before, "Status"):
            status = self.store.resolve_status(new_status)
        new_base = field(after, "BaseStatus")
        if status is None and isinstance(new_base, str) and new_base != ticket.base_status.label:
            status = self.store.default_status(BaseStatus.from_label(new_base))
        if status is not None and status.base is BaseStatus.MERGED:
            raise StoreError("merge tickets with MergeTickets, not PATCH")
        if status is not None and status.base is BaseStatus.DELETED:
            self._require_delete_right()
        owned_by = field(field(after, "OwnedBy"), "AssociateId")
        self.store.update(
            ticket,
            actor,
            title=title if isinstance(title, str) and title != ticket.title else None,
            status=status,
            owned_by=owned_by if isinstance(owned_by, int) else None,
        )

    def _check_unmodified_since(self, request: Request, ticket: Ticket) -> None:
        header = request.header("if-unmodified-since")
        if not header:
            return
        try:
            since = parsedate_to_datetime(header)
        except (TypeError, ValueError):
            try:
                since = parse_iso(header)
            except ValueError:
                raise HttpError(
                    400, _error("If-Unmodified-Since is not a date", "ArgumentError")
                ) from None
        if since.tzinfo is None:
            since = since.replace(tzinfo=ticket.last_changed.tzinfo)
        # HTTP dates have whole seconds: compare at that precision
        if ticket.last_changed.replace(microsecond=0) > since.replace(microsecond=0):
            raise HttpError(
                412, _error("The ticket changed since If-Unmodified-Since", "PreconditionFailed")
            )

    def _delete(self, request: Request) -> tuple[int, Any]:
        """A soft delete; on a `hard_delete` tenant, the row is removed and the request is
        logged as an irreversible one (see the class docstring)."""
        self._require_delete_right()
        ticket = self._visible_or_deleted(request.params["id"])
        if not self.hard_delete:
            self.store.soft_delete([ticket.ticket_id], self._actor(request))
            return 204, None
        state = "deleted" if ticket.base_status is BaseStatus.DELETED else "active"
        self.store.purge([ticket.ticket_id])
        route = request.route.name if request.route else "DELETE Ticket/{id}"
        self.purges.record(
            route, self.clock.now(), [(ticket.ticket_id, state, None)], outcome="done"
        )
        return 204, None

    def _visible_or_deleted(self, ticket_id_text: str) -> Ticket:
        """Deletes are idempotent: a soft-deleted ticket is found even if not readable."""
        try:
            ticket = self.store.get(int(ticket_id_text))
        except ValueError:
            ticket = None
        if ticket is None:
            raise HttpError(404, _error("Ticket not found", "NotFound"))
        return ticket

    def _delete_entity(self, request: Request) -> tuple[int, Any]:
        """`{"TicketEntityId": N}` (the documented casing; the TypeScript client sends
        `ticketEntityId`), or `?ticketEntityId=N`: a soft delete."""
        self._require_delete_right()
        body = self._body_object(request) if request.body.strip() else {}
        raw = field(body, "TicketEntityId")
        if raw is None:
            raw = query_arg(request, "ticketEntityId")
        if raw is None:
            return 400, _error("TicketEntityId is required", "ArgumentError")
        ticket = self._visible_or_deleted(str(raw))
        self.store.soft_delete([ticket.ticket_id], self._actor(request))
        return 204, None

    def _set_deleted(self, request: Request) -> tuple[int, Any]:
        self._require_delete_right()
        ids = self._ids_from(request)
        changed = self.store.soft_delete(ids, self._actor(request))
        if self.set_deleted_result == "changed":
            return 200, changed
        if self.set_deleted_result == "existing":
            return 200, [i for i in dict.fromkeys(ids) if self.store.get(i) is not None]
        return 200, ids

    def _undelete(self, request: Request) -> tuple[int, Any]:
        self._require_delete_right()
        self.store.undelete(self._ids_from(request), self._actor(request))
        return 204, None

    def _get_entity_agent(self, request: Request) -> Response:
        """`GetTicketEntity?ticketEntityId=N`: the entity without `_Links`; an agent answers
        a missing (or purged, or unreadable deleted) ticket with 200 `null`, not 404 (the
        client's documentation: agents do not implement HTTP semantics)."""
        raw = query_arg(request, "ticketEntityId")
        try:
            ticket_id = int(raw) if raw is not None else None
        except ValueError:
            ticket_id = None
        if ticket_id is None:
            raise HttpError(400, _error("ticketEntityId must be an integer", "ArgumentError"))
        ticket = self.store.get(ticket_id)
        if ticket is None or (
            not self.deleted_readable and ticket.base_status is BaseStatus.DELETED
        ):
            return Response(200, b"null", dict(_JSON))
        return Response(200, self._agent_entity(ticket, request))

    def _save_entity(self, request: Request) -> tuple[int, Any]:
        """`SaveTicketEntity`: a full TicketEntity. Without `TicketId` (or 0) it creates, as
        `POST Ticket`; with one it updates the writable fields exactly as a PATCH of the
        same values (a Deleted status soft-deletes and needs the right, leaving Deleted
        restores with the status given, Merged is refused) and always bumps LastChanged.
        An id that does not exist (or was purged) answers 404."""
        body = self._body_object(request)
        actor = self._actor(request)
        raw_id = field(body, "TicketId")
        if raw_id in (None, 0, "0"):
            return 200, self._agent_entity(self._create_from(body, actor), request)
        ticket = self._visible_or_deleted(str(raw_id))
        before = ticket_entity(ticket, self.api_url, TimeFormat(), links=False)
        try:
            self._apply_entity_changes(ticket, before, body, actor)
        except StoreError as exc:
            return 400, _error(str(exc), "ArgumentError")
        return 200, self._agent_entity(ticket, request)

    def _agent_entity(self, ticket: Ticket, request: Request) -> dict[str, Any]:
        return ticket_entity(ticket, self.api_url, self._fmt(request), links=False)

    def _has_function_right(self, request: Request) -> tuple[int, Any]:
        body = self._body_object(request) if request.body.strip() else {}
        name = field(body, "FunctionRight") or query_arg(request, "functionRight")
        if not isinstance(name, str) or not name:
            return 400, _error("FunctionRight is required", "ArgumentError")
        return 200, (self.can_delete if name.lower() in DELETE_RIGHTS else True)

    # ------------------------------------------------------------------ archive

    def _archive(self, request: Request) -> tuple[int, Any]:
        return self._archive_answer(request, request.params["provider"])

    def _archive_answer(self, request: Request, provider: str) -> tuple[int, Any]:
        query: dict[str, str | None] = {k.lower(): v[0] for k, v in request.query.items() if v}
        content_type = (request.header("content-type") or "").lower()
        if request.method == "POST" and "x-www-form-urlencoded" in content_type:
            form = parse_qs(request.body.decode(errors="replace"), keep_blank_values=True)
            query.update({k.lower(): v[0] for k, v in form.items() if v})
        fmt = self._row_format(request)
        try:
            if provider.lower() == DYNAMIC_PROVIDER:
                if not self.ticket_log_readable:
                    return 403, _error("No access to the ticket log", "Forbidden")
                page = dynamic_page(
                    self.store, query, fmt=fmt, api_url=self.api_url, options=self.archive
                )
            else:
                page = archive_page(
                    self.store, provider, query, fmt=fmt, api_url=self.api_url, options=self.archive
                )
        except ODataError as exc:
            return 400, _error(str(exc), "ArchiveQueryError")
        return 200, page

    def _row_format(self, request: Request) -> RowFormat:
        culture = culture_of(
            request.header("so-culture"), request.header("accept-language"), self.culture
        )
        return RowFormat(self._fmt(request), culture)

    def _archive_list(self, request: Request) -> tuple[int, Any]:
        """`Agents/Archive/GetArchiveListByColumns(WithHeader)`: the REST archive's rows as
        `ArchiveListItem`s (`sim/agents.py`); the header variant adds `RowCount`."""
        try:
            query = list_query(self._body_object(request), self.archive.top_max)
            found = archive_rows(
                self.store,
                query.provider,
                select=query.select,
                filter_text=query.filter_text,
                order_by=query.order_by,
            )
        except ODataError as exc:
            return 400, _error(str(exc), "ArchiveQueryError")
        items = list_items(found, query, self._row_format(request))
        if request.path.lower().endswith("withheader"):
            return 200, {
                "RowCount": len(found.rows),
                "Rows": items,
                "TableRight": None,
                "FieldProperties": {},
            }
        return 200, items

    # ------------------------------------------------------------------ admin API

    def admin_seed(self, body: Any) -> Any:
        """`{"tickets": [{"title", "status", "owned_by", "created_at", "last_changed",
        "ticket_id", "connect_id", "pre_delete_status"}...]}` and/or `{"count": N,
        "title": "Ticket {n}", "status": ...}`; returns `{"ids": [...]}`."""
        if not isinstance(body, dict):
            raise ValueError("seed: expected a JSON object")
        specs: list[Mapping[str, Any]] = list(body.get("tickets") or [])
        count = int(body.get("count") or 0)
        template = {k: v for k, v in body.items() if k not in {"tickets", "count"}}
        ids: list[int] = []
        for spec in specs:
            ids.append(self._seed_one(spec, 0))
        for n in range(count):
            ids.append(self._seed_one(template, n + 1))
        return {"ids": ids}

    def _seed_one(self, spec: Mapping[str, Any], n: int) -> int:
        unknown = set(spec) - {
            "title",
            "status",
            "owned_by",
            "created_by",
            "created_at",
            "last_changed",
            "ticket_id",
            "connect_id",
            "pre_delete_status",
        }
        if unknown:
            raise ValueError(f"seed: unknown keys {sorted(unknown)}")
        created_at = spec.get("created_at")
        last_changed = spec.get("last_changed")
        ticket = self.store.create(
            title=str(spec.get("title", "Sandbox ticket {n}")).replace("{n}", str(n)),
            status=spec.get("status"),
            owned_by=int(spec.get("owned_by", 0)),
            created_by=int(spec.get("created_by", 1)),
            ticket_id=int(spec["ticket_id"]) if spec.get("ticket_id") is not None else None,
            created_at=parse_iso(created_at) if created_at else None,
            last_changed=parse_iso(last_changed) if last_changed else None,
            connect_id=int(spec.get("connect_id", -1)),
            pre_delete_status=spec.get("pre_delete_status"),
        )
        return ticket.ticket_id

    def admin_act(self, body: Any) -> Any:
        """`{"agent"|"associate": {"id": 7, "name": "Ann"}, "action": "delete|restore|purge|
        merge|update", "ids": [...], "into": master (merge), "fields": {"title", "status"}
        (update)}`; returns `{"done": [...], "skipped": [...]}` like the Zendesk simulator."""
        if not isinstance(body, dict):
            raise ValueError("act: expected a JSON object")
        who = body.get("agent") or body.get("associate") or {}
        actor = int(who.get("id", 7)) if isinstance(who, dict) else int(who)
        into = int(body["into"]) if body.get("into") is not None else None
        fields = body.get("fields") or {}
        if not isinstance(fields, dict):
            raise ValueError("act: 'fields' must be an object")
        return self.associate_act(
            str(body.get("action", "")),
            _ids(body.get("ids", [])),
            associate=actor,
            into=into,
            fields=fields,
        )

    def associate_act(
        self,
        action: str,
        ids: Sequence[int],
        *,
        associate: int = 7,
        into: int | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> dict[str, list[int]]:
        """Act at once as an associate in the SuperOffice UI would (not an API call).

        `purge` hard-deletes at once, as if the retention job had run (any state);
        `merge` sets the secondaries Merged with ConnectId `into`; `update` sets `title`
        and/or `status` (an id or a name).
        """
        with self.lock:
            self.tick(self.clock.now())
            try:
                if action == "delete":
                    done = self.store.soft_delete(ids, associate)
                elif action == "restore":
                    done = self.store.undelete(ids, associate)
                elif action == "purge":
                    done = self.store.purge(ids)
                elif action == "merge":
                    if into is None:
                        raise ValueError("act merge: 'into' (the master ticket id) is required")
                    done = self.store.merge(ids, into, associate)
                elif action == "update":
                    done = self._update_many(ids, associate, fields or {})
                else:
                    raise ValueError(
                        f"act: unknown action {action!r} (delete, restore, purge, merge, update)"
                    )
            except StoreError as exc:
                raise ValueError(str(exc)) from None
            skipped = [i for i in dict.fromkeys(ids) if i not in set(done)]
            return {"done": done, "skipped": skipped}

    def _update_many(
        self, ids: Sequence[int], associate: int, fields: Mapping[str, Any]
    ) -> list[int]:
        unknown = set(fields) - {"title", "status"}
        if unknown:
            raise ValueError(f"act update: unknown fields {sorted(unknown)}")
        status = self.store.resolve_status(fields["status"]) if "status" in fields else None
        done: list[int] = []
        for ticket_id in dict.fromkeys(ids):
            ticket = self.store.get(ticket_id)
            if ticket is None:
                continue
            title = fields.get("title")
            self.store.update(
                ticket, associate, title=str(title) if title is not None else None, status=status
            )
            done.append(ticket_id)
        return done

    def config_state(self) -> dict[str, Any]:
        return {
            "rate_limits": self.limiter.enabled,
            "requests_per_second": self.requests_per_second,
            "retention_days": self.retention_days,
            "deleted_readable": self.deleted_readable,
            "can_delete": self.can_delete,
            "set_deleted_result": self.set_deleted_result,
            "require_app_token": self.require_app_token,
            "hard_delete": self.hard_delete,
            "next_link": self.archive.next_link,
            "top_default": self.archive.top_default,
            "top_max": self.archive.top_max,
            "culture": self.culture,
            "ticket_log_readable": self.ticket_log_readable,
            "login_failure_status": self.login_failure_status,
            "system_user_configured": self.public_key_pem is not None,
            "webhook_timeout_seconds": self.hooks.timeout,
            "webhook_errors_to_stop": self.hooks.errors_to_stop,
            "webhooks": self.hooks.usage(),
        }

    _CONFIG_KEYS = frozenset(
        {
            "rate_limits",
            "requests_per_second",
            "retention_days",
            "deleted_readable",
            "can_delete",
            "set_deleted_result",
            "require_app_token",
            "hard_delete",
            "next_link",
            "top_default",
            "top_max",
            "culture",
            "ticket_log_readable",
            "login_failure_status",
            "ticket",
            "app_token",
            "bearer",
            "public_key_pem",
            "webhook_timeout_seconds",
            "webhook_errors_to_stop",
        }
    )

    def configure(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Change options at run time. Credentials (`ticket`, `app_token`, `bearer`) can be
        rotated to make old ones fail (they are never echoed back)."""
        unknown = set(body) - self._CONFIG_KEYS
        if unknown:
            raise ValueError(f"config: unknown keys {sorted(unknown)}")
        if "set_deleted_result" in body:
            if body["set_deleted_result"] not in SET_DELETED_RESULTS:
                raise ValueError("config: bad set_deleted_result")
            self.set_deleted_result = str(body["set_deleted_result"])
        if "requests_per_second" in body:
            rps = body["requests_per_second"]
            self.requests_per_second = int(rps) if rps else None
        if "retention_days" in body:
            self.store.retention = timedelta(days=float(body["retention_days"]))
        flags = ("deleted_readable", "can_delete", "require_app_token", "hard_delete")
        for flag in (*flags, "ticket_log_readable"):
            if flag in body:
                setattr(self, flag, bool(body[flag]))
        if {"next_link", "top_default", "top_max"} & set(body):
            self.archive = ArchiveOptions(
                top_default=int(body.get("top_default", self.archive.top_default)),
                top_max=int(body.get("top_max", self.archive.top_max)),
                next_link=bool(body.get("next_link", self.archive.next_link)),
            )
        if "culture" in body:
            if body["culture"] not in CULTURES:
                raise ValueError(f"config: culture must be one of {sorted(CULTURES)}")
            self.culture = str(body["culture"])
        if "login_failure_status" in body:
            self.login_failure_status = int(body["login_failure_status"])
        if "webhook_timeout_seconds" in body or "webhook_errors_to_stop" in body:
            errors = body.get("webhook_errors_to_stop")
            timeout = body.get("webhook_timeout_seconds")
            self.hooks.configure(
                timeout=None if timeout is None else float(timeout),
                errors_to_stop=None if errors is None else int(errors),
            )
        for secret in ("ticket", "app_token", "bearer", "public_key_pem"):
            if secret in body:
                setattr(self, secret, str(body[secret]))
        return super().configure({k: v for k, v in body.items() if k == "rate_limits"})

    # ------------------------------------------------------------------ Python API

    def create_ticket(self, title: str = "Sandbox ticket", **fields: Any) -> int:
        """Create one ticket (fields as for `/_sandbox/seed`); returns its id."""
        with self.lock:
            self.tick(self.clock.now())
            return self._seed_one({"title": title, **fields}, 0)

    def seed_tickets(self, count: int, **template: Any) -> list[int]:
        """Create `count` tickets in one call (`title` may contain `{n}`); returns the ids."""
        result = self.seed_data({"count": count, **template})
        return list(result["ids"])

    def soft_delete(self, ids: Sequence[int], *, associate: int = 7) -> list[int]:
        """Delete as a named associate in the UI would; returns the ids changed."""
        return self.associate_act("delete", ids, associate=associate)["done"]

    def restore(self, ids: Sequence[int], *, associate: int = 7) -> list[int]:
        return self.associate_act("restore", ids, associate=associate)["done"]

    def purge(self, ids: Sequence[int]) -> list[int]:
        """Hard-delete now, as if the retention job had run."""
        return self.associate_act("purge", ids)["done"]

    def merge(self, ids: Sequence[int], into: int, *, associate: int = 7) -> list[int]:
        return self.associate_act("merge", ids, associate=associate, into=into)["done"]

    def signed_system_token(
        self,
        system_user_token: str = "SandboxApp-sandbox",
        *,
        private_key_pem: str | None = None,
        when: datetime | None = None,
    ) -> str:
        """A `SignedSystemToken` as a partner app would send it, signed with the sandbox
        partner key (`partner_keypair()`) at the simulated time unless told otherwise."""
        key = private_key_pem if private_key_pem is not None else partner_keypair()[0]
        return sign_system_user_token(system_user_token, key, when or self.clock.now())

    def ticket_state(self, ticket_id: int) -> dict[str, Any] | None:
        """Everything the simulator knows about one ticket, including what the API hides
        (who changed it last, the pre-delete status, when retention will purge it)."""
        with self.lock:
            self.tick(self.clock.now())
            ticket = self.store.get(ticket_id)
            if ticket is None:
                return None
            return {
                "ticket_id": ticket.ticket_id,
                "title": ticket.title,
                "base_status": ticket.base_status.label,
                "status_id": ticket.status.status_id,
                "connect_id": ticket.connect_id,
                "created_at": ticket.created_at,
                "last_changed": ticket.last_changed,
                "changed_by": ticket.changed_by,
                "owned_by": ticket.owned_by,
                "pre_delete_status_id": ticket.pre_delete_status_id,
                "deleted_at": ticket.deleted_at,
                "purge_due": self.store.purge_due(ticket),
            }

    def is_purged(self, ticket_id: int) -> bool:
        with self.lock:
            self.tick(self.clock.now())
            return ticket_id in self.store.purged


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
