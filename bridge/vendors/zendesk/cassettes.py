"""What a recorded Zendesk conversation must not keep, and where its replay goes.

Plain data for the cassette set-up in `tests/cassettes.py` (which adds the facts common to
every vendor: `Authorization`, cookies, OAuth token names, e-mail addresses...). Read
through `bridge.vendors.registry`.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "AUTH_SCHEMES",
    "CONTENT_KEPT",
    "CONTENT_KEYS",
    "REPLAY_BASE_URL",
    "SECRET_HEADERS",
    "SECRET_KEYS",
    "SECRET_PATTERNS",
]

#: where replayed requests go: any URL works because matching ignores the host
REPLAY_BASE_URL: Final = "https://bridge-sandbox.zendesk.com"

#: Zendesk's credentials travel in `Authorization` alone (Basic or Bearer)
SECRET_HEADERS: Final[frozenset[str]] = frozenset()

#: JSON keys and form/query parameters whose string values are credentials: the API token,
#: and a webhook's signing secret
SECRET_KEYS: Final = frozenset({"api_token", "signing_secret"})

#: credential schemes in `Authorization` beyond the common Basic and Bearer
AUTH_SCHEMES: Final[frozenset[str]] = frozenset()

#: (regex, replacement) for credentials recognisable by their form alone
SECRET_PATTERNS: Final[tuple[tuple[str, str], ...]] = ()

#: ticket text, and a user's name
CONTENT_KEYS: Final = frozenset({"subject", "raw_subject", "description", "name"})

#: Zendesk's own markers of a scrubbed ticket, which the adapter reads: kept as they are
CONTENT_KEPT: Final = frozenset({"SCRUBBED", "X"})
