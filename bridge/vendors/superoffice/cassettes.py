"""What a recorded SuperOffice conversation must not keep, and where its replay goes
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
REPLAY_BASE_URL: Final = "https://sod.superoffice.test/Cust12345"

#: the application token and the ticket, sent as headers besides `Authorization`
SECRET_HEADERS: Final = frozenset({"so-apptoken", "sosession", "soticket"})

#: JSON keys and form/query parameters whose string values are credentials: the ticket
#: (a string here, unlike Zendesk's `"ticket": {...}` object, which is kept), the system-user
#: token before and after signing, and the application token
SECRET_KEYS: Final = frozenset(
    {
        "ticket",
        "soticket",
        "signedsystemtoken",
        "systemtoken",
        "system_token",
        "apptoken",
        "app_token",
        "so-apptoken",
    }
)

#: `Authorization: SOTicket <ticket>`, besides the common Basic and Bearer
AUTH_SCHEMES: Final = frozenset({"SOTicket"})

#: (regex, replacement): a ticket anywhere, by its form (`7T:...`)
SECRET_PATTERNS: Final = ((r"7T:[A-Za-z0-9+/=]{8,}", "<SO-TICKET>"),)

#: ticket text
CONTENT_KEYS: Final = frozenset({"title", "Title", "Subject", "Description"})

#: no marker of SuperOffice's own needs keeping
CONTENT_KEPT: Final[frozenset[str]] = frozenset()

FACTS: Final = CassetteFacts(
    replay_base_url=REPLAY_BASE_URL,
    secret_headers=SECRET_HEADERS,
    secret_keys=SECRET_KEYS,
    auth_schemes=AUTH_SCHEMES,
    secret_patterns=SECRET_PATTERNS,
    content_keys=CONTENT_KEYS,
    content_kept=CONTENT_KEPT,
)
