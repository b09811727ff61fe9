"""The Zendesk simulator's answers written as JSON text straight from its records.

A 1,000-ticket export page is about 2 MB of JSON. Building a dict per ticket and then
encoding the page cost about 80 µs a ticket (most of the simulators' CPU on a first sync);
writing each ticket's text from its fields, with the constant parts encoded once, costs a
few. Nothing is cached between requests, so nothing can be stale: every answer is written
from the records as they are when it is asked for.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from bridge.sandbox import Response, iso_z

if TYPE_CHECKING:
    from bridge.vendors.zendesk.sim.store import Ticket

__all__ = ["JSON_TYPE", "TicketJson", "iso", "json_page", "json_text"]

JSON_TYPE = "application/json; charset=utf-8"
#: `json.dumps(..., ensure_ascii=False)`'s string encoder (the C one when available)
_string: Any = json.encoder.encode_basestring
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

#: the sandbox account's one brand, ticket form and custom status (real ids are account-wide
#: integers, never null in the recordings)
SANDBOX_BRAND_ID = 360000000001
SANDBOX_TICKET_FORM_ID = 360000000002
SANDBOX_CUSTOM_STATUS_ID = 360000000003


@lru_cache(maxsize=65_536)
def iso(moment: datetime) -> str:
    """`iso_z`, fast for the simulator's own aware-UTC times (tickets of one seed or one
    job share their times, hence the cache: a datetime is immutable)."""
    if moment.tzinfo is UTC:
        return moment.isoformat(timespec="seconds")[:19] + "Z"
    return iso_z(moment)


def _value(value: str | None) -> str:
    return "null" if value is None else _string(value)


def _number(value: int | None) -> str:
    return "null" if value is None else str(value)


class TicketJson:
    """A ticket as the API shows it (soft-deleted status `deleted`, purged `SCRUBBED`).

    Every field of the recorded ticket is present, in the recorded order, and an unset one
    is `null` rather than left out (recorded: zenpy cassettes `...-delete-many` show_many
    and `TicketsIncrementalTest.test_get_values`), although the OAS marks most of them
    non-nullable. The sandbox has no organisations, groups, brands or forms: those ids are
    null, brand/form/custom status fixed sandbox ids.
    """

    def __init__(self, api_url: str) -> None:
        self._url = _string(f"{api_url}/tickets/")[:-1]  # open quote, no closing one
        self._via = _dumps({"channel": "api", "source": {"from": {}, "to": {}, "rel": None}})
        self._before_tags = (
            ',"organization_id":null,"group_id":null,"collaborator_ids":[],"follower_ids":[],'
            '"email_cc_ids":[],"forum_topic_id":null,"problem_id":null,"has_incidents":false,'
            '"is_public":true,"due_at":null,"tags":'
        )
        self._after_tags = (
            ',"custom_fields":[],"satisfaction_rating":null,"sharing_agreement_ids":[],'
            f'"custom_status_id":{SANDBOX_CUSTOM_STATUS_ID},"fields":[],"followup_ids":[],'
            f'"ticket_form_id":{SANDBOX_TICKET_FORM_ID},"brand_id":{SANDBOX_BRAND_ID},'
            '"allow_channelback":false,"allow_attachments":true,'
            '"from_messaging_channel":false,"generated_timestamp":'
        )

    def text(self, ticket: Ticket) -> str:
        state = ticket.state
        purged = state == "purged"
        if purged:
            subject, description, external, tags = '"SCRUBBED"', '"X"', "null", "[]"
        else:
            subject, description = _string(ticket.subject), _string(ticket.description)
            external = _value(ticket.external_id)
            tags = _dumps([str(t) for t in ticket.tags]) if ticket.tags else "[]"
        status = _string(ticket.status) if state == "active" else '"deleted"'
        ident = ticket.id
        return (
            f'{{"url":{self._url}{ident}.json","id":{ident},"external_id":{external},'
            f'"via":{self._via},"created_at":"{iso(ticket.created_at)}",'
            f'"updated_at":"{iso(ticket.updated_at)}","type":{_value(ticket.type)},'
            f'"subject":{subject},"raw_subject":{subject},"description":{description},'
            f'"priority":{_value(ticket.priority)},"status":{status},"recipient":null,'
            f'"requester_id":{_number(ticket.requester_id)},'
            f'"submitter_id":{_number(ticket.submitter_id)},'
            f'"assignee_id":{_number(ticket.assignee_id)}{self._before_tags}{tags}'
            f"{self._after_tags}{ticket.generated_timestamp}}}"
        )

    def one(self, ticket: Ticket) -> dict[str, Any]:
        """The same as a dict (single-ticket answers and Python callers)."""
        parsed: dict[str, Any] = json.loads(self.text(ticket))
        return parsed


def json_text(value: Any) -> str:
    """Compact JSON, as the sandbox core encodes bodies."""
    return str(_dumps(value))


def json_page(
    name: str, items: Iterable[str], rest: Mapping[str, Any], status: int = 200
) -> Response:
    """An answer `{name: [items...], **rest}` from items already written as JSON text: the
    list first, as every recorded Zendesk list answer has it."""
    tail = _dumps(dict(rest)) if rest else "{}"
    joined = ",".join(items)
    body = f'{{"{name}":[{joined}]' + ("," + tail[1:] if rest else "}")
    return Response(status, body.encode(), {"Content-Type": JSON_TYPE})
