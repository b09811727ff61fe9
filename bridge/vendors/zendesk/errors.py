"""The short error code in a Zendesk error answer (`RecordNotFound`, `TooManyValues`...).

Zendesk answers errors as `{"error": "<code>", "description": ...}` (fact sheet §6) and, on
newer endpoints, in the JSON:API shape `{"errors": [{"code", "title", ...}]}`; both are read.
The code names the failure in messages and `VendorHTTPError.error`; nothing branches on it.
"""

from __future__ import annotations

import requests

from bridge.vendors.http import answer_object

__all__ = ["error_code"]


def error_code(response: requests.Response) -> str | None:
    """The code of either error shape, or None (the client cuts it to a short name)."""
    body = answer_object(response)
    if body is None:
        return None
    value = body.get("error")
    if isinstance(value, str):
        return value
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code = errors[0].get("code") or errors[0].get("title")
        return str(code) if code else None
    return None
