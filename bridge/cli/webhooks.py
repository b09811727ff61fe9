"""`bridge webhooks register|status|unregister`: bridge's webhook on each vendor
(`bridge/webhook_registration.py`), for every pair unless --pair names one."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import click

from bridge.cli.context import AppContext, fail, pass_app, print_json
from bridge.config import Config
from bridge.core.contract import Adapter
from bridge.core.model import Side
from bridge.factory import build_adapters
from bridge.logging import redact_text
from bridge.secrets import SecretError
from bridge.webhook_registration import (
    SideReport,
    exit_code,
    register_pair,
    status_pair,
    unregister_pair,
)

__all__ = ["webhooks"]

Step = Callable[[Config, Mapping[Side, Adapter]], list[SideReport]]


@click.group()
def webhooks() -> None:
    """Register, check and remove bridge's webhook on each vendor.

    The webhooks call `bridge serve` at [serve] public_url (else http://host:port) +
    /webhooks/<vendor> (+ /<pair> when the config declares several pairs), so that a
    deletion crosses in seconds; the scheduled sync stays the safety net. Each vendor
    section names where its webhook secret lives (webhook_secret_file or _env); the
    secret is never printed. See docs/webhooks.md, "Registration".

    \b
    Exit codes: 0 all well; 2 configuration (nothing registered); 4 a person must look
    (a webhook missing, disabled by the vendor or pointing elsewhere, or a secret bridge
    serve would not verify with); 5 a vendor could not be reached or refused us.
    """


def _run(app: AppContext, step: Step, as_json: bool) -> None:
    reports: list[tuple[str, SideReport]] = []
    for config in app.pairs().values():
        try:
            adapters = build_adapters(config)
        except SecretError as exc:
            fail(str(exc))
        reports += [(config.pair, report) for report in step(config, adapters)]
    several = len({pair for pair, _ in reports}) > 1
    code = exit_code([report for _, report in reports])
    if as_json:
        print_json({"exit_code": int(code), "webhooks": [_row(p, r) for p, r in reports]})
    for pair, report in [] if as_json else reports:
        _echo(pair if several else None, report)
    raise SystemExit(int(code))


def _row(pair: str, report: SideReport) -> dict[str, Any]:
    return {
        "pair": pair,
        "side": report.side,
        "action": report.action,
        "attention": report.attention,
        "notes": [redact_text(n) for n in report.notes],
        "subscriptions": [
            {
                "id": s.id,
                "name": s.name,
                "target_url": s.target_url,
                "events": list(s.events),
                "state": s.state,
                "delivering": s.delivering,
            }
            for s in report.subscriptions
        ],
    }


def _echo(pair: str | None, report: SideReport) -> None:
    prefix = f"[{pair}] " if pair else ""
    if not report.subscriptions:
        click.echo(f"{prefix}{report.side:<11} {report.action}")
    for sub in report.subscriptions:
        click.echo(
            f"{prefix}{report.side:<11} {report.action:<8} {sub.name} -> {sub.target_url} "
            f"(id {sub.id}, {sub.state}; {', '.join(sub.events)})"
        )
    for note in report.notes:
        click.echo(f"{prefix}{'':<11} {'!' if report.attention else ' '} {redact_text(note)}")


_JSON = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


@webhooks.command()
@_JSON
@pass_app
def register(app: AppContext, as_json: bool) -> None:
    """Create bridge's webhook on each vendor, or update the one there (found by its
    name, bridge-<pair>, or its address) and switch it back on.

    SuperOffice is given the secret the config names; if that is a webhook_secret_file
    that is absent or empty, a new random one is written there first. Zendesk makes its
    own signing secret: it is read back and written to the configured
    webhook_secret_file if that is absent or empty, else compared with what is there.

    \b
    Examples:
      bridge webhooks register
      bridge --pair emea webhooks register --json
    """
    _run(app, register_pair, as_json)


@webhooks.command()
@_JSON
@pass_app
def status(app: AppContext, as_json: bool) -> None:
    """Show bridge's webhook on each vendor: exit 4 when one is missing, disabled (Zendesk
    `inactive`, SuperOffice `TooManyErrors` or `Stopped`) or calls another address.

    \b
    Examples:
      bridge webhooks status
      bridge webhooks status --json | jq '.webhooks[] | select(.attention)'
    """
    _run(app, status_pair, as_json)


@webhooks.command()
@_JSON
@pass_app
def unregister(app: AppContext, as_json: bool) -> None:
    """Remove bridge's webhook from each vendor (the secret files stay). The scheduled
    sync still copies every change, only later.

    \b
    Example:
      bridge webhooks unregister
    """
    _run(app, unregister_pair, as_json)
