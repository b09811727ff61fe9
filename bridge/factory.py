"""From a validated config to live adapters: the one place secrets are revealed.

Each registered vendor (`bridge.vendors.registry`) builds its own adapter from its own
section; this module names none of them.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from bridge.budgets import Budgets, TurnTaking
from bridge.config import Config
from bridge.core.contract import Adapter
from bridge.core.decide import Policy
from bridge.core.model import Side
from bridge.vendors.clocks import Clock, Monotonic, Sleep
from bridge.vendors.registry import VENDORS

__all__ = ["build_adapters", "policy_from_config"]


def build_adapters(
    config: Config,
    *,
    sleep: Sleep = time.sleep,
    clock: Clock | None = None,
    monotonic: Monotonic = time.monotonic,
    give_back_after: float | None = None,
) -> dict[Side, Adapter]:
    """Every registered vendor's adapter, keyed by side, in the ledger's order. Raises
    `SecretError` when a secret cannot be read.

    `sleep`, `clock` and `monotonic` come from one clock: the wall clock, or a simulator's
    (the demo and benchmarks run on a simulated clock). A vendor account that other pairs
    of the config use too gets the budget they share (`bridge.budgets`); with
    `give_back_after`, a turn of that budget further away is not waited for (a worker's
    run: `TurnTaking`)."""
    budgets: Budgets | TurnTaking | None = None
    adapters: dict[Side, Adapter] = {}
    for vendor in VENDORS:
        settings = config.section(vendor.section)
        shared = config.shares_account(vendor.section)
        if shared and budgets is None:
            budgets = Budgets.opened(
                config.shared_ledger_url, clock=clock or _wall_clock, sleep=sleep
            )
            if give_back_after is not None:
                budgets = TurnTaking(budgets, give_back_after)
        adapters[vendor.name] = vendor.build(
            settings,
            sleep=sleep,
            clock=clock,
            monotonic=monotonic,
            budgets=budgets if shared else None,
        )
    return adapters


def policy_from_config(config: Config) -> Policy:
    sync = config.sync
    return Policy(
        direction=sync.direction,
        conflict_policy=sync.conflict_policy,
        propagate_purges=sync.propagate_purges,
        propagate_retention_purges=sync.propagate_retention_purges,
    )


def _wall_clock() -> datetime:
    return datetime.now(UTC)
