"""`bridge check --deep`: read-only probes of the vendor behaviours bridge assumes.

Each probe exercises one behaviour listed in `docs/vendor-fidelity.md` under the same id,
against the configured tenant, and says what it saw. Probes only ever read: they get a
`ReadOnlyHttp`, which has no way to send anything but GET, so `--deep` is safe to run
against production. A probe that finds nothing to look at (an empty recycle bin, say)
says so and passes: it was not contradicted, and the line tells the user what to retry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import requests

from bridge.core.contract import Adapter, AdapterError, CheckResult
from bridge.core.model import Side
from bridge.vendors.http import HttpClient, decode_json

__all__ = [
    "DeepCheck",
    "Probe",
    "ProbeFailedError",
    "ReadOnlyHttp",
    "deep_check_for",
    "not_exercised",
    "run_probes",
]

#: the prefix of a probe's line when the tenant had nothing to exercise it on
NOT_EXERCISED = "not exercised: "


class ProbeFailedError(Exception):
    """The tenant contradicts the behaviour: the message says what it showed instead."""


class _NotExercised(Exception):  # noqa: N818 - a signal, not an error
    pass


def not_exercised(reason: str) -> _NotExercised:
    """Raise the result to stop a probe that had nothing to look at (`reason` says what)."""
    return _NotExercised(reason)


class ReadOnlyHttp:
    """The adapter's HTTP client (auth, retries, rate limits) with GET only."""

    def __init__(self, http: HttpClient) -> None:
        self._http = http

    def get(
        self, path: str, params: Mapping[str, Any] | None = None, *, ok: tuple[int, ...] = ()
    ) -> requests.Response:
        return self._http.request("GET", path, params=params, ok=ok)

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return decode_json(self.get(path, params), path)


@dataclass(frozen=True, slots=True)
class Probe:
    """One assumed behaviour and how to see it on a tenant."""

    #: the behaviour's id in docs/vendor-fidelity.md (`so.archive.logical-ids`)
    id: str
    #: the behaviour in a few words, for the line printed
    what: str
    #: looks and returns what it saw; raises `ProbeFailedError` or `not_exercised(...)`
    run: Callable[[ReadOnlyHttp], str]


def run_probes(side: str, http: HttpClient, probes: Sequence[Probe]) -> list[CheckResult]:
    """Every probe, in order; one failing (or erroring) never stops the others."""
    reader = ReadOnlyHttp(http)
    results: list[CheckResult] = []
    for probe in probes:
        name = f"{side} deep {probe.id}"
        try:
            seen = probe.run(reader)
        except _NotExercised as exc:
            results.append(CheckResult(name, True, f"{NOT_EXERCISED}{exc}"))
        except ProbeFailedError as exc:
            results.append(CheckResult(name, False, f"{probe.what}: NO: {exc}"))
        except AdapterError as exc:
            first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            results.append(CheckResult(name, False, f"{probe.what}: could not look: {first}"))
        else:
            results.append(CheckResult(name, True, f"{probe.what}: {seen}"))
    return results


class _WithHttp(Protocol):
    @property
    def side(self) -> Side: ...

    @property
    def http(self) -> HttpClient: ...


#: a vendor's `bridge check --deep`: its probes over a built adapter's own client
DeepCheck = Callable[[Adapter], list[CheckResult]]


def deep_check_for(adapter_type: type[_WithHttp], probes: Sequence[Probe]) -> DeepCheck:
    """The deep check of one vendor: `probes` over its adapter's client (its auth, retries
    and pacing)."""

    def deep_check(adapter: Adapter) -> list[CheckResult]:
        built: object = adapter
        if not isinstance(built, adapter_type):
            raise TypeError(f"not a {adapter_type.__name__}: {type(adapter).__name__}")
        return run_probes(built.side, built.http, probes)

    return deep_check
