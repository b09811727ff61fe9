"""Zendesk's rate-limit headers, read into the neutral `RateLimitInfo`.

Only names Zendesk documents or was recorded sending (fact sheet §5), case-insensitively:
the account limit as `X-Rate-Limit`/`X-Rate-Limit-Remaining` (documented, sent on every
answer), `ratelimit-limit/-remaining/-reset` (2024 recordings) or `rate-limit-*` (2023);
each endpoint limit as a header named by the prefix `Zendesk-RateLimit-` (documented;
recorded `zendesk-ratelimit-tickets-index`, and `zendesk-rate-limit-<name>` in 2023)
valued `total=N; remaining=N; resets=S`. The reset comes only from a `*-reset` header:
`X-Rate-Limit` has no documented reset companion. The adapter hands `parse_rate_limit`
to its `HttpClient`, which keeps the latest as `last_rate_limit`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bridge.vendors.http import RateLimitInfo

__all__ = ["endpoint_budget", "parse_rate_limit"]

#: `zendesk-ratelimit-<name>` (documented, 2024) or `zendesk-rate-limit-<name>` (2023)
_ENDPOINT_HEADER = re.compile(r"^zendesk-rate-?limit-(?P<name>.+)$", re.IGNORECASE)
_KV = re.compile(r"(\w+)\s*=\s*([0-9.]+)")


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimitInfo:
    """Read rate-limit headers in every spelling Zendesk has used (2023, 2024, documented)."""
    lower = {k.lower(): v for k, v in headers.items()}

    def first(*names: str) -> str | None:
        for name in names:
            if name in lower:
                return lower[name]
        return None

    endpoints: dict[str, tuple[int | None, int | None, float | None]] = {}
    for key, value in lower.items():
        match = _ENDPOINT_HEADER.match(key)
        if match:
            fields = {k.lower(): v for k, v in _KV.findall(value)}
            endpoints[match["name"]] = (
                _int(fields.get("total")),
                _int(fields.get("remaining")),
                _float(fields.get("resets")),
            )
    return RateLimitInfo(
        limit=_int(first("x-rate-limit", "ratelimit-limit", "rate-limit")),
        remaining=_int(
            first("x-rate-limit-remaining", "ratelimit-remaining", "rate-limit-remaining")
        ),
        reset_seconds=_float(first("ratelimit-reset", "rate-limit-reset")),
        endpoints=endpoints,
    )


def endpoint_budget(
    info: RateLimitInfo | None, name: str
) -> tuple[int | None, int | None, float | None] | None:
    """The endpoint limit `name` from the last answer, or one whose name extends it: the
    ticket export's is seen as `incremental-exports` (3P clients reading live answers) while
    the docs name the cursor exports' `incremental-exports-cursor`; either is read."""
    if info is None:
        return None
    if name in info.endpoints:
        return info.endpoints[name]
    for key, value in info.endpoints.items():
        if key.startswith(f"{name}-"):
            return value
    return None
