"""The short error text in a SuperOffice error answer.

SuperOffice documents no error body (fact sheet §5: branch on the status only), so this
reads, without relying on it, either `{"Error": ..., "ErrorType": ...}` (the shape the
simulator assumes, docs/sandbox.md) or a lower-case `{"error": ...}`. The text only names
the failure in messages and `VendorHTTPError.error`; nothing branches on it.
"""

from __future__ import annotations

import requests

from bridge.vendors.http import answer_object

__all__ = ["error_code"]

#: read in this order; the first string value wins
_KEYS = ("error", "Error", "ErrorType")


def error_code(response: requests.Response) -> str | None:
    """The first of `_KEYS` holding a string, or None (the client cuts it to a short name)."""
    body = answer_object(response)
    if body is None:
        return None
    for key in _KEYS:
        value = body.get(key)
        if isinstance(value, str):
            return value
    return None
