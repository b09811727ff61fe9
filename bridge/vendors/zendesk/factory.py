"""The Zendesk adapter from its parsed `[zendesk]` section (the one place its token is read)."""

from __future__ import annotations

import time

from bridge.vendors.clocks import Clock, Monotonic, Sleep
from bridge.vendors.zendesk.adapter import ZendeskAdapter
from bridge.vendors.zendesk.settings import ZendeskSettings

__all__ = ["zendesk_adapter"]


def zendesk_adapter(
    settings: ZendeskSettings,
    *,
    sleep: Sleep = time.sleep,
    clock: Clock | None = None,
    monotonic: Monotonic = time.monotonic,
) -> ZendeskAdapter:
    """Raises `SecretError` when the token cannot be read. `monotonic` is unused: Zendesk
    is paced by its answers (429, rate-limit headers), not by a client-side throttle."""
    del monotonic
    token = settings.token.reveal()
    oauth = settings.auth == "oauth"
    return ZendeskAdapter(
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
    )
