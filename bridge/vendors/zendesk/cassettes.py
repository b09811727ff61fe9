"""What a recorded Zendesk conversation must not keep, and where its replay goes
(see `bridge.vendors.cassette_facts`)."""

from __future__ import annotations

from typing import Final

from bridge.vendors.cassette_facts import CassetteFacts

__all__ = ["FACTS"]

FACTS: Final = CassetteFacts(
    # where replayed requests go: any URL works because matching ignores the host
    replay_base_url="https://bridge-sandbox.zendesk.com",
    # Zendesk's credentials travel in `Authorization` alone (Basic or Bearer)
    secret_headers=frozenset(),
    # JSON keys and form/query parameters whose string values are credentials: the API token,
    # and a webhook's signing secret
    secret_keys=frozenset({"api_token", "signing_secret"}),
    # credential schemes in `Authorization` beyond the common Basic and Bearer
    auth_schemes=frozenset(),
    # (regex, replacement) for credentials recognisable by their form alone
    secret_patterns=(),
    # ticket text, and a user's name
    content_keys=frozenset({"subject", "raw_subject", "description", "name"}),
    # Zendesk's own markers of a scrubbed ticket, which the adapter reads: kept as they are
    content_kept=frozenset({"SCRUBBED", "X"}),
)
