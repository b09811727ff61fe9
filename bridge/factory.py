"""From a validated config to live adapters: the one place secrets are revealed."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from bridge.config import Config, SuperOfficeSettings, ZendeskSettings
from bridge.core.contract import Adapter
from bridge.core.decide import Policy
from bridge.core.model import Side
from bridge.secrets import Secret
from bridge.vendors.registry import SUPEROFFICE, ZENDESK
from bridge.vendors.superoffice.adapter import SuperOfficeAdapter
from bridge.vendors.superoffice.auth import (
    BasicAuth,
    BearerAuth,
    SOTicketAuth,
    SuperOfficeAuth,
    SystemUserAuth,
)
from bridge.vendors.zendesk.adapter import ZendeskAdapter

__all__ = ["build_adapters", "policy_from_config"]

Sleep = Callable[[float], None]
Clock = Callable[[], datetime]
Monotonic = Callable[[], float]


def _reveal(secret: Secret | None) -> str | None:
    return secret.reveal() if secret is not None else None


def zendesk_adapter(
    settings: ZendeskSettings, *, sleep: Sleep = time.sleep, clock: Clock | None = None
) -> ZendeskAdapter:
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


def superoffice_auth(
    settings: SuperOfficeSettings, *, sleep: Sleep = time.sleep, clock: Clock | None = None
) -> SuperOfficeAuth:
    mode = settings.auth
    if mode == "soticket":
        return SOTicketAuth(_reveal(settings.ticket) or "", _reveal(settings.app_token))
    if mode == "bearer":
        return BearerAuth(_reveal(settings.bearer) or "", _reveal(settings.app_token))
    if mode == "basic":
        return BasicAuth(settings.username or "", _reveal(settings.password) or "")
    public_key = settings.public_key_file.read_bytes() if settings.public_key_file else None
    return SystemUserAuth(
        system_token=_reveal(settings.system_user_token) or "",
        private_key_pem=_reveal(settings.private_key) or "",
        app_token=_reveal(settings.app_token) or "",
        tenant=settings.tenant,
        login_url=settings.login_url or "",
        public_key_pem=public_key,
        timeout=settings.timeout_seconds,
        sleep=sleep,
        clock=clock,
    )


def superoffice_adapter(
    settings: SuperOfficeSettings,
    *,
    sleep: Sleep = time.sleep,
    clock: Clock | None = None,
    monotonic: Monotonic = time.monotonic,
) -> SuperOfficeAdapter:
    return SuperOfficeAdapter(
        settings.base_url,
        tenant=settings.tenant,
        auth=superoffice_auth(settings, sleep=sleep, clock=clock),
        retention_days=settings.retention_days,
        requests_per_second=settings.requests_per_second,
        timeout=settings.timeout_seconds,
        bridge_associate_id=settings.bridge_associate_id,
        sleep=sleep,
        clock=clock,
        monotonic=monotonic,
    )


def build_adapters(
    config: Config,
    *,
    sleep: Sleep = time.sleep,
    clock: Clock | None = None,
    monotonic: Monotonic = time.monotonic,
) -> dict[Side, Adapter]:
    """Both adapters, keyed by side. Raises `SecretError` when a secret cannot be read.

    `sleep`, `clock` and `monotonic` come from one clock: the wall clock, or a simulator's
    (the demo and benchmarks run on a simulated clock)."""
    return {
        SUPEROFFICE: superoffice_adapter(
            config.superoffice, sleep=sleep, clock=clock, monotonic=monotonic
        ),
        ZENDESK: zendesk_adapter(config.zendesk, sleep=sleep, clock=clock),
    }


def policy_from_config(config: Config) -> Policy:
    sync = config.sync
    return Policy(
        direction=sync.direction,
        conflict_policy=sync.conflict_policy,
        propagate_purges=sync.propagate_purges,
        propagate_retention_purges=sync.propagate_retention_purges,
    )
