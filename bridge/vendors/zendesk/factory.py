"""The Zendesk adapter from its parsed `[zendesk]` section (the one place its token is read)."""

from __future__ import annotations

import time

from bridge.core.contract import BudgetBook
from bridge.vendors.clocks import Clock, Monotonic, Sleep
from bridge.vendors.zendesk.adapter import (
    CALLS_BUDGET,
    DEFAULT_CALLS_PER_MINUTE,
    DELETED_LIST_BUDGET,
    DELETED_LIST_PER_MINUTE,
    EXPORT_BUDGET,
    EXPORT_PER_MINUTE,
    ZendeskAdapter,
)
from bridge.vendors.zendesk.settings import ZendeskSettings

__all__ = ["zendesk_adapter"]


def zendesk_adapter(
    settings: ZendeskSettings,
    *,
    sleep: Sleep = time.sleep,
    clock: Clock | None = None,
    monotonic: Monotonic = time.monotonic,
    budgets: BudgetBook | None = None,
) -> ZendeskAdapter:
    """Raises `SecretError` when the token cannot be read. `monotonic` is unused: Zendesk
    is paced by its answers (429, rate-limit headers), not by a client-side throttle.

    With `budgets` (several pairs use this account), the account's calls a minute, its
    export's pages a minute and its jobs are counted with every other pair's: the calls
    at `requests_per_minute`, else at the limit Zendesk's last answer reported."""
    del monotonic
    token = settings.token.reveal()
    oauth = settings.auth == "oauth"
    built: list[ZendeskAdapter] = []

    def calls_per_minute() -> float:
        if settings.requests_per_minute:
            return float(settings.requests_per_minute)
        return built[0].calls_per_minute() if built else DEFAULT_CALLS_PER_MINUTE

    budget = (
        None
        if budgets is None
        else budgets.account(
            f"zendesk:{settings.base_url}",
            limits={
                CALLS_BUDGET: calls_per_minute,
                EXPORT_BUDGET: lambda: EXPORT_PER_MINUTE,
                DELETED_LIST_BUDGET: lambda: DELETED_LIST_PER_MINUTE,
            },
            job_limit=settings.job_limit,
        )
    )
    adapter = ZendeskAdapter(
        base_url=settings.base_url,
        email=None if oauth else settings.email,
        token=None if oauth else token,
        oauth_token=token if oauth else None,
        timeout=settings.timeout_seconds,
        job_limit=settings.job_limit,
        bridge_user_id=settings.bridge_user_id,
        outcome_wait=float(settings.outcome_wait_seconds),
        sleep=sleep,
        clock=clock,
        budget=budget,
    )
    built.append(adapter)
    return adapter
