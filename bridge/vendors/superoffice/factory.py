"""The SuperOffice adapter from its parsed `[superoffice]` section (the one place its
credentials are read)."""

from __future__ import annotations

import time

from bridge.core.contract import BudgetBook
from bridge.secrets import Secret
from bridge.vendors.clocks import Clock, Monotonic, Sleep
from bridge.vendors.superoffice.adapter import SuperOfficeAdapter
from bridge.vendors.superoffice.auth import (
    BasicAuth,
    BearerAuth,
    SOTicketAuth,
    SuperOfficeAuth,
    SystemUserAuth,
)
from bridge.vendors.superoffice.settings import SuperOfficeSettings

__all__ = ["superoffice_adapter", "superoffice_auth"]


def _reveal(secret: Secret | None) -> str | None:
    return secret.reveal() if secret is not None else None


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
    budgets: BudgetBook | None = None,
) -> SuperOfficeAdapter:
    """Raises `SecretError` when a secret cannot be read. `budgets` is unused: a tenant
    limits each integration by its own pace (`requests_per_second`), not an account's
    shared count, so pairs sharing a tenant need nothing shared."""
    del budgets
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
