"""The `[superoffice]` section of `bridge.toml`: what it holds and how it is read."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from bridge.secrets import Secret
from bridge.settings import Table

__all__ = ["AUTH_MODES", "SuperOfficeSettings", "read_settings"]

AUTH_MODES: Final = ("soticket", "bearer", "basic", "system_user")
# secrets (by base name) and plain keys that only some SuperOffice auth modes use
_SO_SECRETS_BY_MODE: Final[dict[str, tuple[str, ...]]] = {
    "soticket": ("ticket", "app_token"),
    "bearer": ("bearer", "app_token"),
    "basic": ("password",),
    "system_user": ("system_user_token", "private_key", "app_token"),
}
# with a bearer token SO-AppToken is not documented as required, but may be sent
_SO_OPTIONAL_SECRETS: Final[dict[str, tuple[str, ...]]] = {"bearer": ("app_token",)}
_SO_PLAIN_BY_MODE: Final[dict[str, tuple[str, ...]]] = {
    "basic": ("username",),
    "system_user": ("login_url", "public_key_file"),
}
#: every secret any auth mode takes: one written in the file is named as a secret
_SECRET_BASES: Final = frozenset(b for bases in _SO_SECRETS_BY_MODE.values() for b in bases)


@dataclass(frozen=True, slots=True)
class SuperOfficeSettings:
    base_url: str
    tenant: str
    auth: str
    ticket: Secret | None = None
    app_token: Secret | None = None
    bearer: Secret | None = None
    username: str | None = None
    password: Secret | None = None
    system_user_token: Secret | None = None
    private_key: Secret | None = None
    login_url: str | None = None
    public_key_file: Path | None = None
    retention_days: int = 14
    requests_per_second: float = 10.0
    timeout_seconds: float = 30.0
    bridge_associate_id: int | None = None
    #: the Secret of bridge's SuperOffice webhook (`bridge serve` checks each call's
    #: X-SuperOffice-Signature with it); None: webhooks not used
    webhook_secret: Secret | None = None

    @property
    def bridge_actor_id(self) -> int | None:
        """Bridge's own associate: a change it made is bridge's (a webhook's echo)."""
        return self.bridge_associate_id

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v1"

    def secrets(self) -> dict[str, Secret]:
        """Secrets this auth mode uses, by base key name."""
        found = {base: getattr(self, base) for base in _SO_SECRETS_BY_MODE.get(self.auth, ())}
        found["webhook_secret"] = self.webhook_secret
        return {base: s for base, s in found.items() if s is not None}

    def file_problems(self) -> list[tuple[str, str]]:
        """The system user's public key file, when one is named, must be readable."""
        if self.auth != "system_user" or self.public_key_file is None:
            return []
        try:
            self.public_key_file.read_bytes()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            return [("public_key_file", f"cannot read {self.public_key_file}: {reason}")]
        return []


def read_settings(table: Table) -> SuperOfficeSettings | None:
    base_url = table.url("base_url", forbidden_tail="/api/v1")
    tenant = table.text("tenant")
    if isinstance(tenant, str) and not re.fullmatch(r"[A-Za-z0-9_.-]+", tenant):
        table.bad("tenant", "must be a tenant id such as Cust12345 (letters, digits, _ . -)")
        tenant = None
    auth = table.choice("auth", AUTH_MODES, "soticket")
    table.secret_bases.update(_SECRET_BASES)

    secrets: dict[str, Secret | None] = {}
    plain: dict[str, Any] = {}
    if auth in _SO_SECRETS_BY_MODE:
        optional = _SO_OPTIONAL_SECRETS.get(auth, ())
        for base in _SO_SECRETS_BY_MODE[auth]:
            secret = table.secret(base, required=base not in optional)
            if secret is not None or base not in optional:
                secrets[base] = secret
        if auth == "basic":
            plain["username"] = table.text("username")
        if auth == "system_user":
            plain["login_url"] = table.url("login_url", None)
            if (
                plain["login_url"] is None
                and base_url is not None
                and not table.present("login_url")
            ):
                parts = urlsplit(base_url)
                plain["login_url"] = f"{parts.scheme}://{parts.netloc}/Login"
            plain["public_key_file"] = table.path("public_key_file")
        # keys of the other modes are mistakes (or leftovers that hide which mode is in use)
        used = {k for b in _SO_SECRETS_BY_MODE[auth] for k in (f"{b}_env", f"{b}_file")}
        used.update(_SO_PLAIN_BY_MODE.get(auth, ()))
        for mode in AUTH_MODES:
            mode_keys = [k for b in _SO_SECRETS_BY_MODE[mode] for k in (f"{b}_env", f"{b}_file")]
            mode_keys += _SO_PLAIN_BY_MODE.get(mode, ())
            for key in mode_keys:
                if key in used or key in table.known:
                    continue
                table.known.add(key)
                if table.present(key):
                    owners = [
                        m
                        for m in AUTH_MODES
                        if key.rsplit("_", 1)[0] in _SO_SECRETS_BY_MODE[m]
                        or key in _SO_PLAIN_BY_MODE.get(m, ())
                    ]
                    listed = " or ".join(f'"{m}"' for m in owners)
                    table.bad(key, f'only used with auth = {listed} (auth is "{auth}")')
    else:  # auth invalid: do not pile unknown-key noise on top
        for mode in AUTH_MODES:
            for base in _SO_SECRETS_BY_MODE[mode]:
                table.known.update((f"{base}_env", f"{base}_file"))
            table.known.update(_SO_PLAIN_BY_MODE.get(mode, ()))

    retention = table.integer("retention_days", 14, minimum=0, maximum=3_650)
    rps = table.positive_number("requests_per_second", 10.0, maximum=10_000)
    timeout = table.positive_number("timeout_seconds", 30.0, maximum=600)
    associate = table.integer("bridge_associate_id", 0, minimum=0)
    webhook_secret = table.secret("webhook_secret", required=False)
    table.reject_unknown()
    if (
        base_url is None
        or tenant is None
        or auth is None
        or any(s is None for s in secrets.values())
        or (auth == "basic" and plain.get("username") is None)
    ):
        return None
    return SuperOfficeSettings(
        base_url=base_url,
        tenant=tenant,
        auth=auth,
        ticket=secrets.get("ticket"),
        app_token=secrets.get("app_token"),
        bearer=secrets.get("bearer"),
        username=plain.get("username"),
        password=secrets.get("password"),
        system_user_token=secrets.get("system_user_token"),
        private_key=secrets.get("private_key"),
        login_url=plain.get("login_url"),
        public_key_file=plain.get("public_key_file"),
        retention_days=retention,
        requests_per_second=rps,
        timeout_seconds=timeout,
        bridge_associate_id=associate or None,
        webhook_secret=webhook_secret,
    )
