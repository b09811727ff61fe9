"""How the ledger stores a time: whole microseconds since the Unix epoch, UTC (schema v4).

An integer is bound and read without parsing (a text time costs a format on the way in and a
parse on the way out, per value: on a first sync of a million links that was most of the
ledger's time), compares as a number in SQL, and loses nothing: the ledger's times are
aware UTC datetimes with microseconds, and every one of them maps to one integer and back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["EPOCH", "from_micros", "to_micros"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_micros(value: datetime) -> int:
    """An aware datetime as microseconds since the epoch (ValueError for a naive one: the
    ledger never guesses a time zone)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the ledger; use aware UTC datetimes")
    return (value - EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    """Microseconds since the epoch as an aware UTC datetime."""
    return EPOCH + timedelta(microseconds=value)
