"""Zendesk's rate-limit headers, read into the neutral `RateLimitInfo`.

Zendesk has spelled them three ways (fact sheet §5): `X-Rate-Limit`/`X-Rate-Limit-Remaining`
(documented), `rate-limit-*` (2023 recordings), `ratelimit-*` (2024), plus one header per
endpoint limit, `Zendesk-RateLimit-<name>: total=N; remaining=N; resets=S` (also seen as
`zendesk-rate-limit-<name>`). Every spelling is accepted, case-insensitively. The adapter
hands `parse_rate_limit` to its `HttpClient`, which keeps the latest as `last_rate_limit`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bridge.vendors.http import RateLimitInfo

__all__ = ["parse_rate_limit"]

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
        reset_seconds=_float(first("ratelimit-reset", "rate-limit-reset", "x-rate-limit-reset")),
        endpoints=endpoints,
    )
