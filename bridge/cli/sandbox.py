"""`bridge sandbox zendesk|superoffice|serve`: the vendor simulators on loopback."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import click

from bridge.sandbox.simulator import SimulatorBase
from bridge.sandbox_pair import Sandbox
from bridge.sandbox_seed import seed_sandbox
from bridge.values import PORT, BoundedInt
from bridge.vendors.superoffice.sim.simulator import SuperOfficeSimulator
from bridge.vendors.zendesk.sim.simulator import ZendeskSimulator, plan_limit
from bridge.webhook_registration import register_config

__all__ = ["sandbox"]


def _wait_until_interrupted() -> None:
    try:
        while not threading.Event().wait(3600):
            pass
    except KeyboardInterrupt:
        click.echo("Stopped.")


def _serve_until_interrupted(simulator: SimulatorBase, banner: str) -> None:
    """Say where the simulator serves, then serve until Ctrl-C (exit 0). The banner is
    inside the interrupt's reach: a Ctrl-C that came as soon as it was read, before the
    wait began, ended the command "Aborted!" (exit 1) on a loaded machine."""
    try:
        click.echo(banner)
        simulator.serve_forever()
    except KeyboardInterrupt:
        simulator.stop()


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a number of days", param_hint="--retention-days")
    return value


@click.group()
def sandbox() -> None:
    """Run faithful local simulators of the vendor APIs (real HTTP on 127.0.0.1).

    Each accepts the vendor's auth, answers with the documented shapes and errors,
    enforces rate limits, runs jobs and retention on a simulated clock, and offers an
    admin API under /_sandbox/ (seed, act as an agent, advance the clock, inject faults,
    read request counters). See docs/sandbox.md.
    """


@sandbox.command()
@click.option(
    "--port", type=PORT, default=8081, show_default=True, help="TCP port (0: any free port)."
)
@click.option("--email", default="admin@example.com", show_default=True)
@click.option("--token", default="sandbox-token", show_default=True)
@click.option(
    "--plan",
    default="enterprise",
    show_default=True,
    help="Rate-limit plan: team, professional, enterprise, enterprise_plus, or requests/min.",
)
def zendesk(port: int, email: str, token: str, plan: str) -> None:
    """Serve the Zendesk Support API simulator until interrupted.

    \b
    Example:
      bridge sandbox zendesk --port 8081
      curl -u admin@example.com/token:sandbox-token \\
           http://127.0.0.1:8081/api/v2/deleted_tickets.json
    """
    try:
        plan_limit(int(plan) if plan.isdigit() else plan)
    except ValueError as exc:
        raise click.BadParameter(str(exc).removeprefix("plan: "), param_hint="--plan") from None
    simulator = ZendeskSimulator(
        port=port, email=email, token=token, plan=int(plan) if plan.isdigit() else plan
    )
    _serve_until_interrupted(
        simulator, f"Zendesk simulator: {simulator.start()}  (admin: {simulator.admin_url}/)"
    )


@sandbox.command()
@click.option(
    "--port", type=PORT, default=8082, show_default=True, help="TCP port (0: any free port)."
)
@click.option("--tenant", default="Cust12345", show_default=True)
@click.option("--ticket", default="7T:sandbox", show_default=True, help="Accepted SOTicket.")
@click.option("--app-token", default="sandbox-app", show_default=True, help="SO-AppToken.")
@click.option(
    "--retention-days",
    type=click.FloatRange(min=0, max=3650),
    callback=lambda _ctx, _param, value: _finite(value),
    default=14.0,
    show_default=True,
    help="Retain deleted data (0 to 3650 days).",
)
def superoffice(port: int, tenant: str, ticket: str, app_token: str, retention_days: float) -> None:
    """Serve the SuperOffice WebAPI simulator until interrupted.

    \b
    Example:
      bridge sandbox superoffice --port 8082
      curl -H 'Authorization: SOTicket 7T:sandbox' -H 'SO-AppToken: sandbox-app' \\
           http://127.0.0.1:8082/Cust12345/api/v1/Archive/RecycleTicket
    """
    simulator = SuperOfficeSimulator(
        port=port, tenant=tenant, ticket=ticket, app_token=app_token, retention_days=retention_days
    )
    _serve_until_interrupted(
        simulator,
        f"SuperOffice simulator: {simulator.start()}/api/v1  (admin: {simulator.admin_url}/)",
    )


@sandbox.command()
@click.option("--zendesk-port", type=PORT, default=8081, show_default=True)
@click.option("--superoffice-port", type=PORT, default=8082, show_default=True)
@click.option(
    "--write-config",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write FOLDER/bridge.toml (and its secret files) pointing at these simulators.",
)
@click.option(
    "--seed",
    "links",
    type=BoundedInt(10, 100_000),
    metavar="N",
    help="With --write-config: populate both tenants with N linked tickets (10 to 100,000) "
    "and a short history in FOLDER's ledger (a migration, two syncs, a conflict), plus "
    "changes the next sync will copy.",
)
@click.option(
    "--webhooks",
    is_flag=True,
    help="With --write-config: both simulators call `bridge serve` at 127.0.0.1:SERVE_PORT "
    "with signed webhooks ([serve] and the webhook secret files are written into FOLDER).",
)
@click.option(
    "--serve-port",
    type=PORT,
    default=8470,
    show_default=True,
    help="With --webhooks: the port `bridge serve` will listen on.",
)
def serve(
    zendesk_port: int,
    superoffice_port: int,
    folder: Path | None,
    links: int | None,
    webhooks: bool,
    serve_port: int,
) -> None:
    """Serve both simulators, on one simulated clock, until interrupted.

    Without --seed the tenants are empty. With --seed N they hold N linked tickets and
    the ledger their history, so that `status`, `sync --dry-run`, `sync` and `report`
    have something to show at once. With --webhooks the simulators' webhooks are
    registered (after the seeding) through their own APIs, as `bridge webhooks register`
    does, so that every later delete, restore or purge calls `bridge serve`.

    \b
    Examples:
      bridge sandbox serve --write-config ./try
      bridge --config ./try/bridge.toml sync        # in another terminal
    \b
      bridge sandbox serve --seed 200 --write-config ./try
      bridge --config ./try/bridge.toml status      # in another terminal
      bridge --config ./try/bridge.toml sync --dry-run
      bridge --config ./try/bridge.toml sync
      bridge --config ./try/bridge.toml report --format md -o -
    \b
      bridge sandbox serve --write-config ./try --webhooks
      bridge --config ./try/bridge.toml serve       # in another terminal: signed calls
      bridge --config ./try/bridge.toml webhooks status
    """
    if links is not None and folder is None:
        raise click.UsageError("--seed writes the history into a ledger: add --write-config DIR")
    if webhooks and folder is None:
        raise click.UsageError(
            "--webhooks writes the secrets into a config: add --write-config DIR"
        )
    port = serve_port if webhooks else None
    with Sandbox(zendesk_port=zendesk_port, superoffice_port=superoffice_port) as both:
        click.echo(f"Zendesk simulator:     {both.zendesk.base_url}")
        click.echo(f"SuperOffice simulator: {both.superoffice.base_url}/api/v1")
        if folder is not None and links is not None:
            seeded = seed_sandbox(both, folder, links)
            runs = ", ".join(f"{kind} {outcome}" for kind, outcome in seeded.runs)
            click.echo(
                f"Seeded {seeded.links:,} linked tickets; history: {runs}; "
                f"{seeded.waiting} changes wait for the next sync."
            )
            path = seeded.config_path
            click.echo(
                f"Wrote {path}: try `ticket-bridge --config {path} status`, `sync --dry-run`"
            )
        elif folder is not None:
            path = both.write_config(folder, serve_port=port)
            click.echo(f"Wrote {path}: run `ticket-bridge --config {path} sync`")
        if folder is not None and webhooks:
            if links is not None:  # the seeding wrote the config without [serve]
                both.write_config(folder, serve_port=port)
            for report in register_config(folder / "bridge.toml"):
                for sub in report.subscriptions:
                    click.echo(f"Webhook {report.side}: {sub.name} -> {sub.target_url}")
            click.echo(
                f"Run `ticket-bridge --config {folder / 'bridge.toml'} serve` to receive them."
            )
        click.echo("Press Ctrl-C to stop.", err=True)
        _wait_until_interrupted()
