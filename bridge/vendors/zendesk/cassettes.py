"""What a recorded Zendesk conversation must not keep, and where its replay goes
(see `bridge.vendors.cassette_facts`)."""

from __future__ import annotations

from typing import Final

from bridge.vendors.cassette_facts import CassetteFacts

__all__ = [
    "AUTH_SCHEMES",
    "CONTENT_KEPT",
    "CONTENT_KEYS",
    "FACTS",
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

FACTS: Final = CassetteFacts(
    replay_base_url=REPLAY_BASE_URL,
    secret_headers=SECRET_HEADERS,
    secret_keys=SECRET_KEYS,
    auth_schemes=AUTH_SCHEMES,
    secret_patterns=SECRET_PATTERNS,
    content_keys=CONTENT_KEYS,
    content_kept=CONTENT_KEPT,
)
