"""What every vendor's answer shapes share: the base shape, the ticket id, and `check`.

One pydantic model per answer, naming only the fields an adapter reads (everything else is
ignored, so that a vendor adding a field breaks nothing); each vendor package declares its
own in its `wire` module. A body that does not fit is a failed read: `check` raises
`UnreadableAnswerError` (a `TransientError`) naming the endpoint, the field and what was
expected, and the run decides nothing from it (`docs/design.md`, "A failed read decides
nothing"). On a write's answer the same misfit is an unknown outcome: the vendor answered
2xx, so it may have acted.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt
from pydantic import ValidationError as _ValidationError

from bridge.core.contract import OutcomeUnknownError, UnreadableAnswerError

__all__ = ["Shape", "TicketId", "check"]

M = TypeVar("M", bound=BaseModel)

TicketId = Annotated[StrictInt, Field(gt=0, le=2**63 - 1)]


class Shape(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


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
