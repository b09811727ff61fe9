"""The `[zendesk]` section of `bridge.toml`: what it holds and how it is read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bridge.secrets import Secret
from bridge.settings import Table

__all__ = ["AUTH_MODES", "ZendeskSettings", "read_settings"]

AUTH_MODES: Final = ("api_token", "oauth")


@dataclass(frozen=True, slots=True)
class ZendeskSettings:
    base_url: str
    auth: str
    email: str | None
    token: Secret
    timeout_seconds: float = 30.0
    job_limit: int = 30
    bridge_user_id: int | None = None
    outcome_wait_seconds: int = 900
    #: the account's requests a minute that every pair using it shares (0: what Zendesk
    #: reports in X-Rate-Limit); counted only where several pairs use the account
    requests_per_minute: int = 0
    #: the signing secret of bridge's Zendesk webhook (`bridge serve` checks each call's
    #: X-Zendesk-Webhook-Signature with it); None: webhooks not used
    webhook_secret: Secret | None = None

    @property
    def bridge_actor_id(self) -> int | None:
        """Bridge's own API user: a change it made is bridge's (a webhook's echo)."""
        return self.bridge_user_id

    def secrets(self) -> dict[str, Secret]:
        """Secrets this auth mode uses, by base key name (`token` for `token_env`/`token_file`)."""
        found = {"token": self.token, "webhook_secret": self.webhook_secret}
        return {base: secret for base, secret in found.items() if secret is not None}

    def file_problems(self) -> list[tuple[str, str]]:
        return []


def read_settings(table: Table) -> ZendeskSettings | None:
    base_url = table.url("base_url", forbidden_tail="/api/v2")
    auth = table.choice("auth", AUTH_MODES, "api_token")
    email = table.text("email", None)
    if auth == "api_token" and email is None and not table.present("email"):
        table.bad("email", 'missing (required with auth = "api_token")')
    if auth == "oauth" and table.present("email"):
        table.bad("email", 'only used with auth = "api_token"')
    if isinstance(email, str) and "@" not in email:
        table.bad("email", "must be an email address")
    token = table.secret("token", required=True)
    timeout = table.positive_number("timeout_seconds", 30.0, maximum=600)
    job_limit = table.integer("job_limit", 30, minimum=1)
    user_id = table.integer("bridge_user_id", 0, minimum=0, maximum=2**63 - 1)
    outcome_wait = table.integer("outcome_wait_seconds", 900, minimum=1, maximum=86_400)
    requests_per_minute = table.integer("requests_per_minute", 0, minimum=0, maximum=1_000_000)
    webhook_secret = table.secret("webhook_secret", required=False)
    table.reject_unknown()
    if base_url is None or auth is None or token is None:
        return None
    return ZendeskSettings(
        base_url=base_url,
        auth=auth,
        email=email if auth == "api_token" else None,
        token=token,
        timeout_seconds=timeout,
        job_limit=job_limit,
        bridge_user_id=user_id or None,
        outcome_wait_seconds=outcome_wait,
        requests_per_minute=requests_per_minute,
        webhook_secret=webhook_secret,
    )
