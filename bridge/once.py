"""One run of one pair: what `bridge sync` does once, and what a `bridge worker` job does.

Both open the pair's ledger themselves and hand it here; this module builds the adapters
from the pair's config, holds the ledger's lease for the run (renewed between batches),
counts the vendor calls into the run's counts, and returns the run's result. It sits above
the run pipeline (which never sees the config or the factory) and below the command line
and the worker, so that a scheduled `sync` and a queued job run the very same code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from bridge.config import Config, check_secrets
from bridge.core.contract import AccountBusyError, Adapter
from bridge.core.decide import Policy
from bridge.core.model import Side
from bridge.errors import BridgeError
from bridge.factory import build_adapters, policy_from_config
from bridge.ledger import Ledger
from bridge.ledger.metrics import CALLS_SUFFIX, RATE_LIMITED_SUFFIX
from bridge.ledger.tables import utcnow
from bridge.run.runner import TARGETED_KIND, RunResult, SyncRun
from bridge.run.state import RunOptions
from bridge.run.summary import PlanSummary, dry_run_summary
from bridge.secrets import SecretError
from bridge.vendors.http import observing_calls
from bridge.vendors.registry import VENDORS

__all__ = [
    "LEASE",
    "build_pair_adapters",
    "count_vendor_calls",
    "holding_lease",
    "run_once",
    "run_options",
    "run_with",
    "targeted_options",
    "turn_is_near",
]

#: the ledger lease a sync (or migration) run holds: one run per pair's ledger at a time
LEASE = "sync"


def run_options(
    config: Config,
    *,
    policy: Policy | None = None,
    dry_run: bool = False,
    allow_mass_purge: bool = False,
    operator: str | None = None,
    keep_plan: bool = True,
) -> RunOptions:
    """A sync run's options from the pair's `[sync]` settings (`policy`: an override of
    its direction or conflict policy, as `bridge sync --direction` gives)."""
    sync = config.sync
    return RunOptions(
        policy=policy or policy_from_config(config),
        dry_run=dry_run,
        max_purges_per_run=sync.max_purges_per_run,
        allow_mass_purge=allow_mass_purge,
        operator=operator,
        attention_after=timedelta(minutes=sync.attention_after_minutes),
        sweep_period=timedelta(hours=sync.sweep_period_hours),
        sweep_max=sync.sweep_max_per_run,
        keep_plan=keep_plan,
    )


def targeted_options(config: Config, hints: Mapping[Side, frozenset[int]]) -> RunOptions:
    """A targeted run's options (`bridge serve`'s hints, in-process or as a worker's job):
    the pair's policy and purge cap, only the `hints` looked up, no plan kept."""
    sync = config.sync
    return RunOptions(
        policy=policy_from_config(config),
        max_purges_per_run=sync.max_purges_per_run,
        attention_after=timedelta(minutes=sync.attention_after_minutes),
        kind=TARGETED_KIND,
        keep_plan=False,
        hints=dict(hints),
    )


def build_pair_adapters(
    config: Config, *, give_back_after: float | None = None
) -> dict[Side, Adapter]:
    """Both adapters, or a `BridgeError` (exit 2) naming the config key of each secret that
    cannot be read: a configuration error, which no retry will fix. `give_back_after`:
    `build_adapters`."""
    problems = check_secrets(config)
    if problems:
        raise BridgeError("; ".join(problems))
    try:
        return build_adapters(config, give_back_after=give_back_after)
    except SecretError as exc:
        raise BridgeError(str(exc)) from None


def turn_is_near(adapters: Mapping[Side, Adapter], give_back_after: float) -> None:
    """Raise `AccountBusyError` when a shared account's calls are spent for longer than
    `give_back_after` seconds: a run started then would read nothing and be recorded as
    `waiting`, every tick of every pair of the account."""
    wait = max((adapter.turn_in() for adapter in adapters.values()), default=0.0)
    if wait > give_back_after:
        raise AccountBusyError(
            "the calls of a vendor account this pair shares are taken by the pairs ahead "
            f"of it; the turn comes in {wait:.0f}s",
            retry_after=wait,
        )


@contextmanager
def holding_lease(ledger: Ledger, config: Config, holder: str) -> Iterator[Callable[[], None]]:
    """Hold the ledger's run lease for the block; yields the function that renews it, to
    call between batches. Raises `LeaseHeldError` (exit 3) when another run has it."""
    ttl = timedelta(seconds=config.sync.lease_seconds)
    ledger.acquire_lease(LEASE, holder, ttl)
    try:
        yield lambda: ledger.renew_lease(LEASE, holder, ttl)
    finally:
        ledger.release_lease(LEASE, holder)


@contextmanager
def _lease(
    ledger: Ledger, config: Config, holder: str, dry_run: bool
) -> Iterator[Callable[[], None]]:
    """The run's lease; none for a dry run, which writes nothing (not even the lease) and so
    may look while another run works."""
    if dry_run:
        yield lambda: None
        return
    with holding_lease(ledger, config, holder) as renew:
        yield renew


def run_once(
    config: Config,
    ledger: Ledger,
    options: RunOptions,
    *,
    holder: str,
    stop: Callable[[], bool],
    give_back_after: float | None = None,
) -> tuple[RunResult, PlanSummary | None]:
    """One run of the pair `config` names, on its open `ledger`: its vendor calls counted
    into the run's counts; `stop` is polled between batches (the batch in flight is
    finished and recorded). A dry run takes no lease and comes with its summary. With
    `give_back_after`, a shared account's turn further away ends the run `waiting` (a
    worker's: `bridge.budgets.TurnTaking`).

    Raises `BridgeError` for a configuration error (exit 2), `LeaseHeldError` when
    another run holds the pair's ledger (exit 3), and `AccountBusyError` when the turn is
    that far already: no run is started (`turn_is_near`)."""
    adapters = build_pair_adapters(config, give_back_after=give_back_after)
    if give_back_after is not None:
        turn_is_near(adapters, give_back_after)
    result, run = run_with(config, ledger, adapters, options, holder=holder, stop=stop)
    if not options.dry_run:
        return result, None
    return result, dry_run_summary(ledger, run.state.tally, adapters, options)


def run_with(
    config: Config,
    ledger: Ledger,
    adapters: Mapping[Side, Adapter],
    options: RunOptions,
    *,
    holder: str,
    stop: Callable[[], bool],
    now: Callable[[], datetime] = utcnow,
) -> tuple[RunResult, SyncRun]:
    """`run_once` with adapters built already (`bridge serve` keeps its own for every
    targeted run): the lease, the counted calls, the run. Raises `LeaseHeldError`."""
    with _lease(ledger, config, holder, options.dry_run) as renew:
        run = SyncRun(
            ledger,
            adapters,
            options,
            holder=holder,
            now=now,
            stop_requested=stop,
            on_batch=renew,
        )
        with count_vendor_calls(vendor_base_urls(config), run.counts):
            return run.execute(), run


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def vendor_base_urls(config: Config) -> dict[Side, str]:
    """Each side's base URL as configured: what tells whose a request is."""
    return {vendor.name: config.section(vendor.section).base_url for vendor in VENDORS}


@contextmanager
def count_vendor_calls(base_urls: Mapping[Side, str], counts: Counter[str]) -> Iterator[None]:
    """Count, in `counts`, every vendor request sent in the block (`<side>.http_calls`)
    and every 429 answer (`<side>.http_429`), the side told by the request's origin
    (scheme, host and port of its `base_urls`); the run's counts carry them into the
    ledger, where the metrics sum them."""
    origins = {_origin(url): side for side, url in base_urls.items()}

    def observe(url: str, status: int | None) -> None:
        side = origins.get(_origin(url))
        if side is None:
            return
        counts[f"{side}{CALLS_SUFFIX}"] += 1
        if status == 429:
            counts[f"{side}{RATE_LIMITED_SUFFIX}"] += 1

    with observing_calls(observe):
        yield
