"""The shapes of the SuperOffice answers the adapter reads (see `bridge.vendors.wire`)."""

from __future__ import annotations

from typing import Any

from bridge.vendors.wire import Shape

__all__ = ["SuperOfficeArchivePage"]


class SuperOfficeArchivePage(Shape):
    """An archive provider's page; each row's values are checked by the adapter's row
    parser (archive values come as numbers, `[I:42]` strings or display text)."""

    value: list[dict[str, Any]]
