"""What a vendor declares about its recorded conversations (`cassettes/<vendor>/`).

Plain data, no vcrpy (a test-only dependency): the recording machinery and the facts common
to every vendor (`Authorization`, cookies, OAuth token names, e-mail addresses...) are in
`tests/cassettes.py`, which reads each vendor's facts through `bridge.vendors.registry`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CassetteFacts"]


@dataclass(frozen=True, slots=True)
class CassetteFacts:
    """What a vendor's recorded conversations must not keep, and where their replay goes.

    Plain data: the vcrpy machinery (a test-only dependency) and the facts common to every
    vendor are in `tests/cassettes.py`; names are compared case-insensitively there.
    """

    #: the fake base URL replayed requests go to (matching ignores the host)
    replay_base_url: str
    #: headers carrying credentials besides `Authorization`
    secret_headers: frozenset[str]
    #: JSON keys and form/query parameters whose string values are credentials
    secret_keys: frozenset[str]
    #: `Authorization` schemes besides Basic and Bearer
    auth_schemes: frozenset[str]
    #: (regex, replacement) for credentials recognisable by their form
    secret_patterns: tuple[tuple[str, str], ...]
    #: JSON keys holding ticket text
    content_keys: frozenset[str]
    #: values of those keys that are the vendor's own markers, kept as they are
    content_kept: frozenset[str]
