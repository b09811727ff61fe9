"""Strict values: one rule per kind of value, the same in link files, config and options.

Python's `int()` accepts `+12`, `1_000`, ` 12 ` and digits of other scripts (`١٢٣`), and
big numbers end in `OverflowError` deep inside; every id, count, duration and port bridge
reads from a person goes through here instead, so that a bad value is a clear error with
the value and the limit.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, TypeVar, cast

import click

from bridge.core.model import Side

__all__ = [
    "MAX_INTERVAL",
    "PORT",
    "BoundedInt",
    "Interval",
    "TicketId",
    "parse_bounded_int",
    "parse_interval",
    "parse_ticket_id",
]

#: the longest `--every` interval (a week: longer is a job for cron)
MAX_INTERVAL = timedelta(days=7)
_DIGITS = re.compile(r"[0-9]+")
_INTERVAL = re.compile(r"([0-9]+)([smhd]?)")
T = TypeVar("T")
_UNITS = {"": "seconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_bounded_int(text: str, *, what: str, minimum: int, maximum: int) -> int:
    """A whole number of ASCII digits within [minimum, maximum], or a ValueError saying
    which rule it breaks."""
    value = text.strip()
    if not value:
        raise ValueError(f"{what} is empty")
    if not _DIGITS.fullmatch(value):
        raise ValueError(f"{what} {value[:40]!r} is not a whole number (digits 0-9 only)")
    if len(value.lstrip("0")) > len(str(maximum)):  # no need to make a huge int of it
        raise ValueError(f"{what} {value[:40]} is out of range ({minimum:,} to {maximum:,})")
    number = int(value)
    if not minimum <= number <= maximum:
        raise ValueError(f"{what} {value[:40]} is out of range ({minimum:,} to {maximum:,})")
    return number


def parse_ticket_id(text: str, side: Side, maximum: int, *, what: str | None = None) -> int:
    """A ticket id of `side`: ASCII digits, 1 to the largest id its vendor declares."""
    return parse_bounded_int(text, what=what or f"{side} ticket id", minimum=1, maximum=maximum)


def parse_interval(text: str) -> timedelta:
    """`90s`, `5m`, `2h`, `1d` (or plain seconds): at least a second, at most a week."""
    match = _INTERVAL.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text[:40]!r} is not an interval like 90s, 5m, 2h or 1d")
    digits, unit = match.groups()
    # over 999,999,999 of any unit is far beyond a week, and beyond what timedelta holds
    if len(digits.lstrip("0")) > 9:
        raise ValueError(f"{text[:40]!r} is out of range (1s to {MAX_INTERVAL.days}d)")
    interval = timedelta(**{_UNITS[unit]: int(digits)})
    if interval <= timedelta(0) or interval > MAX_INTERVAL:
        raise ValueError(f"{text[:40]!r} is out of range (1s to {MAX_INTERVAL.days}d)")
    return interval


class _Checked(click.ParamType[T]):
    """A click type whose text goes through one of the parsers above: a ValueError is the
    usage error click shows (exit 2), with the value and its limit."""

    def parse(self, text: str) -> T:
        raise NotImplementedError

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> T:
        if not isinstance(value, str | int) or isinstance(value, bool):
            return cast(T, value)  # a default already converted
        try:
            return self.parse(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class TicketId(_Checked[int]):
    """A click type for a ticket id of one side."""

    def __init__(self, side: Side, maximum: int) -> None:
        self.side = side
        self.maximum = maximum
        self.name = f"{side}-id"

    def parse(self, text: str) -> int:
        return parse_ticket_id(text, self.side, self.maximum)


class BoundedInt(_Checked[int]):
    """A click type for a whole number within bounds (click's IntRange takes `1_000`)."""

    name = "integer"

    def __init__(self, minimum: int, maximum: int) -> None:
        self.minimum = minimum
        self.maximum = maximum

    def parse(self, text: str) -> int:
        return parse_bounded_int(text, what="value", minimum=self.minimum, maximum=self.maximum)


#: a TCP port on the command line (0: any free port)
PORT = BoundedInt(0, 65_535)


class Interval(_Checked[timedelta]):
    """A click type for `--every`: 90s, 5m, 2h, 1d."""

    name = "interval"

    def parse(self, text: str) -> timedelta:
        return parse_interval(text)
