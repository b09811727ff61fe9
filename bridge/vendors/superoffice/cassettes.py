"""What a recorded SuperOffice conversation must not keep, and where its replay goes
(see `bridge.vendors.cassette_facts`)."""

from __future__ import annotations

from typing import Final

from bridge.vendors.cassette_facts import CassetteFacts

__all__ = ["FACTS"]

FACTS: Final = CassetteFacts(
    # where replayed requests go: any URL works because matching ignores the host
    replay_base_url="https://sod.superoffice.test/Cust12345",
    # the application token and the ticket, sent as headers besides `Authorization`
    secret_headers=frozenset({"so-apptoken", "sosession", "soticket"}),
    # JSON keys and form/query parameters whose string values are credentials: the ticket
    # (a string here, unlike Zendesk's `"ticket": {...}` object, which is kept), the system-user
    # token before and after signing, and the application token
    secret_keys=frozenset(
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
    ),
    # `Authorization: SOTicket <ticket>`, besides the common Basic and Bearer
    auth_schemes=frozenset({"SOTicket"}),
    # (regex, replacement): a ticket anywhere, by its form (`7T:...`)
    secret_patterns=((r"7T:[A-Za-z0-9+/=]{8,}", "<SO-TICKET>"),),
    # ticket text
    content_keys=frozenset({"title", "Title", "Subject", "Description"}),
    # no marker of SuperOffice's own needs keeping
    content_kept=frozenset(),
)
