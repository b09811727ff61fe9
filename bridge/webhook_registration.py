"""`bridge webhooks register|status|unregister` for one pair: bridge's webhook on each
vendor, pointing at `bridge serve` (`[serve] public_url` + `webhook_path`), and the secret
it is signed with kept where the config says (docs/webhooks.md, "Registration").

The secret never passes through a log, a message or the terminal:

* a vendor that takes bridge's secret (SuperOffice) is given the configured one; when the
  config names a `webhook_secret_file` that is absent or empty, a new random secret is
  written there first (mode 0600);
* a vendor that makes its own (Zendesk) has it read back after registering and written to
  the configured `webhook_secret_file` when that is absent or empty. A file or variable
  already holding another value is left alone and reported (bridge serve would refuse the
  vendor's calls): empty the file and register again. A `webhook_secret_env` can only be
  compared, so when it is unset or differs the report says where to read the secret.

Without a `webhook_secret_env|_file` for a vendor nothing is registered with it: a webhook
whose calls `bridge serve` cannot verify would only be refused.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from bridge.config import Config, load_pairs
from bridge.core.contract import Adapter
from bridge.core.model import Side
from bridge.errors import BridgeError, ExitCode
from bridge.factory import build_adapters
from bridge.secrets import Secret, SecretError, register_secret_value
from bridge.settings import VendorSettings
from bridge.vendors.registry import VENDORS, Vendor
from bridge.vendors.webhook_subscription import Subscription

__all__ = [
    "SideReport",
    "WebhookSecretError",
    "exit_code",
    "register_config",
    "register_pair",
    "status_pair",
    "subscription_name",
    "target_url",
    "unregister_pair",
    "webhook_path",
]

#: the config key (base name) of a vendor's webhook secret
SECRET_KEY: Final = "webhook_secret"


class WebhookSecretError(BridgeError):
    """A vendor's webhook secret is not configured, or cannot be read or written: nothing
    was registered with that vendor."""


@dataclass
class SideReport:
    """What was found or done on one vendor: one line of the command's output."""

    side: Side
    #: `created`, `updated`, `found`, `missing`, `removed`
    action: str
    subscriptions: list[Subscription] = field(default_factory=list)
    #: what was done about the secret, or why `bridge serve` would refuse the calls (never
    #: the secret)
    notes: list[str] = field(default_factory=list)
    #: True: a person must look (a subscription disabled, missing, pointing elsewhere, or
    #: a secret bridge serve would not verify with)
    attention: bool = False


def webhook_path(side: Side, config: Config) -> str:
    """Where `bridge serve` takes this vendor's calls for this pair: `/webhooks/<side>`,
    or `/webhooks/<side>/<pair>` when the config declares several pairs."""
    if len(config.pair_names) > 1:
        return f"/webhooks/{side}/{config.pair}"
    return f"/webhooks/{side}"


def target_url(side: Side, config: Config) -> str:
    return config.serve.url.rstrip("/") + webhook_path(side, config)


def subscription_name(config: Config) -> str:
    """The webhook's name on the vendor: one per pair, found again by it."""
    return f"bridge-{config.pair}"


def _secret_of(vendor: Vendor[Any], config: Config) -> Secret:
    settings: VendorSettings = config.section(vendor.section)
    secret = settings.secrets().get(SECRET_KEY)
    if secret is None:
        raise WebhookSecretError(
            f"[{vendor.section}] names no {SECRET_KEY}: add {SECRET_KEY}_file = "
            f'"secrets/{vendor.name}.{SECRET_KEY}" (register writes the secret there) or '
            f"{SECRET_KEY}_env; nothing was registered"
        )
    return secret


def _file_unset(secret: Secret) -> bool:
    """A secret file that is absent or holds only whitespace: bridge may fill it."""
    if secret.kind != "file":
        return False
    path = Path(secret.name)
    try:
        return not path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return True
    except OSError as exc:
        raise WebhookSecretError(f"cannot read {secret.describe()}: {exc.strerror}") from None


def _write_file(secret: Secret, value: str) -> None:
    """Write the secret, readable by its owner only; never over a file that holds one."""
    register_secret_value(value)
    path = Path(secret.name)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if path.exists() else os.O_EXCL)
        fd = os.open(path, flags, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(value + "\n")
        os.chmod(path, 0o600)
    except OSError as exc:
        raise WebhookSecretError(f"cannot write {secret.describe()}: {exc.strerror}") from None


def _given_secret(vendor: Vendor[Any], secret: Secret, notes: list[str]) -> str:
    """The secret bridge gives the vendor: the configured one, or a new one written to
    the configured file when that is empty."""
    if _file_unset(secret):
        value = secrets.token_urlsafe(32)
        _write_file(secret, value)
        notes.append(f"wrote a new webhook secret to {secret.name}")
        return value
    try:
        return secret.reveal()
    except SecretError as exc:
        raise WebhookSecretError(str(exc)) from None


def _keep_vendor_secret(secret: Secret, value: str, webhook_id: str, notes: list[str]) -> bool:
    """Store the secret the vendor made where the config says; True when bridge serve
    will not verify with it (a person must look)."""
    register_secret_value(value)
    if _file_unset(secret):
        _write_file(secret, value)
        notes.append(f"wrote the webhook's signing secret to {secret.name}")
        return False
    try:
        held = secret.reveal()
    except SecretError:
        notes.append(
            f"{secret.describe()} is not set: set it to the signing secret of webhook "
            f"{webhook_id} (the vendor's admin pages show it), or name a webhook_secret_file "
            "and register again to have it written"
        )
        return True
    if hmac.compare_digest(held.encode(), value.encode()):
        notes.append(f"{secret.describe()} holds the webhook's signing secret")
        return False
    notes.append(
        f"{secret.describe()} holds another secret than webhook {webhook_id} signs with: "
        "bridge serve would refuse its calls; empty it and register again"
    )
    return True


def register_pair(config: Config, adapters: Mapping[Side, Adapter]) -> list[SideReport]:
    """Register (or update and re-enable) bridge's webhook on every vendor of the pair.
    Every vendor's secret is checked before anything is registered."""
    wanted = {vendor.name: _secret_of(vendor, config) for vendor in VENDORS}
    name = subscription_name(config)
    reports: list[SideReport] = []
    for vendor in VENDORS:
        subscriptions = vendor.subscriptions
        url = target_url(vendor.name, config)
        report = SideReport(vendor.name, "")
        secret = wanted[vendor.name]
        given = (
            None
            if subscriptions.vendor_makes_secret
            else _given_secret(vendor, secret, report.notes)
        )
        registered = subscriptions.register(
            adapters[vendor.name], name=name, target_url=url, secret=given
        )
        report.action = "created" if registered.created else "updated"
        report.subscriptions.append(registered.subscription)
        if registered.signing_secret is not None:
            report.attention = _keep_vendor_secret(
                secret, registered.signing_secret, registered.subscription.id, report.notes
            )
        advice = subscriptions.advice(url)
        if advice:
            report.notes.append(advice)
        reports.append(report)
    return reports


def status_pair(config: Config, adapters: Mapping[Side, Adapter]) -> list[SideReport]:
    """Each vendor's subscriptions for this pair; attention when one is missing, disabled
    (by a person or by the vendor after too many errors) or calls another address."""
    name = subscription_name(config)
    reports: list[SideReport] = []
    for vendor in VENDORS:
        url = target_url(vendor.name, config)
        found = vendor.subscriptions.find(adapters[vendor.name], name=name, target_url=url)
        report = SideReport(vendor.name, "found" if found else "missing", found)
        if not found:
            report.notes.append(f"no webhook {name} calls {url}: run `bridge webhooks register`")
        for sub in found:
            if not sub.delivering:
                report.notes.append(
                    f"webhook {sub.id} is {sub.state}: the vendor does not call it; "
                    "`bridge webhooks register` switches it back on"
                )
            if sub.target_url != url:
                report.notes.append(
                    f"webhook {sub.id} calls {sub.target_url}, not {url}: register again"
                )
        if len(found) > 1:
            report.notes.append(f"{len(found)} webhooks match: every change is sent more often")
        report.attention = bool(report.notes)
        reports.append(report)
    return reports


def unregister_pair(config: Config, adapters: Mapping[Side, Adapter]) -> list[SideReport]:
    """Remove bridge's webhook(s) of this pair from every vendor (secrets are left)."""
    name = subscription_name(config)
    reports: list[SideReport] = []
    for vendor in VENDORS:
        adapter = adapters[vendor.name]
        url = target_url(vendor.name, config)
        found = vendor.subscriptions.find(adapter, name=name, target_url=url)
        for sub in found:
            vendor.subscriptions.remove(adapter, sub)
        reports.append(SideReport(vendor.name, "removed" if found else "missing", found))
    return reports


def register_config(path: Path) -> list[SideReport]:
    """`register_pair` for every pair of the config file at `path` (the sandbox's, once
    its simulators run)."""
    reports: list[SideReport] = []
    for config in load_pairs(path).values():
        reports += register_pair(config, build_adapters(config))
    return reports


def exit_code(reports: list[SideReport]) -> ExitCode:
    return ExitCode.ATTENTION if any(r.attention for r in reports) else ExitCode.OK
