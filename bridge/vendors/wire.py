"""What every vendor's answer shapes share: the base shape, the ticket id, `check` and
`decode`.

One pydantic model per answer, naming only the fields an adapter reads (everything else is
ignored, so that a vendor adding a field breaks nothing); each vendor package declares its
own in its `wire` module. A body that does not fit is a failed read: `check` raises
`UnreadableAnswerError` (a `TransientError`) naming the endpoint, the field and what was
expected, and the run decides nothing from it (`docs/design.md`, "A failed read decides
nothing"). On a write's answer the same misfit is an unknown outcome: the vendor answered
2xx, so it may have acted.

The one answer that is a tenant's worth of whole tickets, Zendesk's incremental export (a
thousand tickets a page, with their descriptions), is a msgspec `Struct` read straight from
the body's bytes by `decode`: the fields the adapter does not read are skipped by the
parser, never made into Python objects (six times faster than `json.loads` and a model
check, and no ticket content held), with the same failed read naming the field.

An answer whose values come in more than one form (SuperOffice's archive rows: numbers,
`[I:42]` strings) has a `Struct` for the form bridge asks for, tried first by `fits`, and
is read by its lenient reader only when that does not fit: the usual page costs one parse
in C, and an unusual one is read, or refused naming the value, as it always was.
"""

from __future__ import annotations

import re
from typing import Annotated, TypeVar

import msgspec
import requests
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from pydantic import ValidationError as _ValidationError

from bridge.core.contract import OutcomeUnknownError, UnreadableAnswerError

__all__ = ["FastTicketId", "Shape", "TicketId", "check", "decode", "fits"]

M = TypeVar("M", bound=BaseModel)
S = TypeVar("S")

TicketId = Annotated[StrictInt, Field(gt=0, le=2**63 - 1)]
#: the same, for a `decode` shape
FastTicketId = Annotated[int, msgspec.Meta(gt=0, le=2**63 - 1)]


class Shape(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


def check(model: type[M], body: object, endpoint: str, *, write: bool = False) -> M:
    """`body` as `model`, or a failed read (an unknown outcome for a write's answer)
    naming the endpoint, the first field that does not fit and what was expected."""
    try:
        return model.model_validate(body)
    except _ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        error = OutcomeUnknownError if write else UnreadableAnswerError
        raise error(
            f"{endpoint}: answer does not fit: '{where}' {first['msg'].lower()} "
            f"({exc.error_count()} problem(s)); read stopped"
        ) from None


#: where msgspec says a misfit is (`... - at `$.tickets[0].id``), and a missing field's name
_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"missing required field `(?P<field>[^`]+)`")


def decode(decoder: msgspec.json.Decoder[S], response: requests.Response, endpoint: str) -> S:
    """The body of a read's answer as the decoder's shape, or a failed read naming the
    endpoint and the first field that does not fit (as `check` names it: `tickets.0.id`)."""
    content = response.content
    try:
        return decoder.decode(content)
    except msgspec.ValidationError as exc:
        match = _AT.match(str(exc))
        message = match["message"] if match else str(exc)
        path = (match["path"] or "") if match else ""
        where = re.sub(r"\[(\d+)\]", r".\1", path).lstrip(".")
        missing = _MISSING.search(message)
        if missing:
            where = f"{where}.{missing['field']}".lstrip(".")
        raise UnreadableAnswerError(
            f"{endpoint}: answer does not fit: '{where or 'body'}' {message.lower()}; read stopped"
        ) from None
    except msgspec.DecodeError:
        raise UnreadableAnswerError(
            f"{endpoint}: malformed response body ({len(content)} bytes, "
            f"status {response.status_code})"
        ) from None


def fits(decoder: msgspec.json.Decoder[S], content: bytes) -> S | None:
    """The body as the decoder's shape, or None when it is not in that shape (or no JSON
    at all): for an answer whose lenient reader then reads it, and names what is wrong."""
    try:
        return decoder.decode(content)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
