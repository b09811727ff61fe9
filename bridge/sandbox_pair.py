"""Both simulators together, and a bridge config that points at them.

Used by `bridge sandbox serve --write-config`, `bridge demo`, the end-to-end tests and the
benchmarks, so that "a working bridge against the sandbox" is set up in one place.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from bridge.config import load_pairs
from bridge.core.model import Side
from bridge.ledger import Ledger
from bridge.sandbox import SimClock, SimulatorBase
from bridge.vendors.registry import SIDES, SUPEROFFICE_VENDOR, ZENDESK_VENDOR
from bridge.vendors.superoffice.sim.simulator import SuperOfficeSimulator
from bridge.vendors.zendesk.sim.simulator import ZendeskSimulator

__all__ = ["Sandbox", "write_pairs_config", "write_sandbox_config"]


@dataclass
class Sandbox:
    """Both simulators on one simulated clock."""

    clock: SimClock = field(default_factory=SimClock)
    zendesk_port: int = 0
    superoffice_port: int = 0
    zendesk_email: str = "admin@example.com"
    zendesk_token: str = "sandbox-token"
    zendesk: ZendeskSimulator = field(init=False)
    superoffice: SuperOfficeSimulator = field(init=False)

    def __post_init__(self) -> None:
        self.zendesk = ZENDESK_VENDOR.simulator(
            port=self.zendesk_port,
            clock=self.clock,
            email=self.zendesk_email,
            token=self.zendesk_token,
        )
        self.superoffice = SUPEROFFICE_VENDOR.simulator(
            port=self.superoffice_port, clock=self.clock
        )

    @property
    def simulators(self) -> dict[Side, SimulatorBase]:
        """Both simulators by the side their vendor stands on."""
        return {ZENDESK_VENDOR.name: self.zendesk, SUPEROFFICE_VENDOR.name: self.superoffice}

    def start(self) -> Self:
        for simulator in self.simulators.values():
            simulator.start()
        return self

    def stop(self) -> None:
        for simulator in self.simulators.values():
            simulator.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def relax_limits(self) -> None:
        """Switch rate limits off (tests and the demo that are not about limits)."""
        self.zendesk.configure({"rate_limits": False})
        self.superoffice.configure({"requests_per_second": None})

    def write_config(
        self, folder: Path, *, serve_port: int | None = None, **overrides: str
    ) -> Path:
        return write_sandbox_config(folder, self, serve_port=serve_port, **overrides)


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(value + "\n")
    os.chmod(path, 0o600)


def write_sandbox_config(
    folder: Path, sandbox: Sandbox, *, serve_port: int | None = None, **sync_overrides: str
) -> Path:
    """Write `folder/bridge.toml` and its secret files (mode 0600) for this sandbox.

    `sync_overrides` are raw TOML values for the `[sync]` table, e.g.
    `max_purges_per_run="50"`. With `serve_port`, a `[serve]` section on 127.0.0.1 and
    each vendor's `webhook_secret_file` (`secrets/<vendor>.webhook_secret`, written when
    the webhooks are registered: `bridge.webhook_registration`).
    """
    return write_pairs_config(folder, {None: sandbox}, serve_port=serve_port, **sync_overrides)


def write_pairs_config(
    folder: Path,
    sandboxes: Mapping[str | None, Sandbox],
    *,
    serve_port: int | None = None,
    **sync_overrides: str,
) -> Path:
    """`write_sandbox_config` for several pairs of simulators, one `[pairs.NAME]` each
    (the single key None: the plain one-pair layout). Secrets go in `secrets/NAME/`."""
    folder.mkdir(parents=True, exist_ok=True)
    hooks = serve_port is not None
    sync = {
        "direction": '"both"',
        "conflict_policy": '"manual"',
        "propagate_purges": "true",
        "propagate_retention_purges": "false",
        "max_purges_per_run": "100",
        "lease_seconds": "900",
        **sync_overrides,
    }
    sync_lines = "\n".join(f"{key} = {value}" for key, value in sync.items())
    vendor_sections = "".join(
        _vendor_sections(folder, name, sandbox, webhooks=hooks)
        for name, sandbox in sandboxes.items()
    )
    serve = (
        ""
        if serve_port is None
        else f"""
[serve]
# where `bridge serve` listens; the simulators' webhooks call it here
host = "127.0.0.1"
port = {serve_port}
"""
    )
    text = f"""# bridge configuration for the local sandbox (written by bridge).
# The secrets are files beside this one; the simulators accept exactly these values.

[ledger]
url = "sqlite:///bridge.db"

[logging]
format = "auto"
level = "warning"
{vendor_sections}
[sync]
{sync_lines}
{serve}
[links]
external_id_pattern = "superoffice-{{id}}"
"""
    path = folder / "bridge.toml"
    path.write_text(text, encoding="utf-8")
    for config in load_pairs(path).values():
        Ledger.open(config.ledger_url, sides=SIDES).close()
    return path


def _vendor_sections(
    folder: Path, pair: str | None, sandbox: Sandbox, *, webhooks: bool = False
) -> str:
    """One pair's `[zendesk]` and `[superoffice]` (under `[pairs.NAME.…]` when named),
    with its secret files written (the webhook secrets' files are named, not written:
    registering the webhooks fills them)."""
    zendesk, superoffice = sandbox.zendesk, sandbox.superoffice
    secrets = Path("secrets") if pair is None else Path("secrets") / pair
    prefix = "" if pair is None else f"pairs.{pair}."
    _write_secret(folder / secrets / "zendesk.token", sandbox.zendesk_token)
    _write_secret(folder / secrets / "superoffice.ticket", superoffice.ticket)
    _write_secret(folder / secrets / "superoffice.app_token", superoffice.app_token)

    def webhook_secret(side: str) -> str:
        path = secrets / f"{side}.webhook_secret"
        return f'webhook_secret_file = "{path}"\n' if webhooks else ""

    return f"""
[{prefix}zendesk]
base_url = "{zendesk.base_url}"
auth = "api_token"
email = "{zendesk.email}"
token_file = "{secrets / "zendesk.token"}"
timeout_seconds = 30
job_limit = 30
{webhook_secret(ZENDESK_VENDOR.name)}
[{prefix}superoffice]
base_url = "{superoffice.base_url}"
tenant = "{superoffice.tenant}"
auth = "soticket"
ticket_file = "{secrets / "superoffice.ticket"}"
app_token_file = "{secrets / "superoffice.app_token"}"
retention_days = {int(superoffice.retention_days)}
requests_per_second = 10
timeout_seconds = 30
{webhook_secret(SUPEROFFICE_VENDOR.name)}"""
