"""`bridge demo`: see bridge work in one command, with no account and no configuration."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from bridge.demo import DEFAULT_SEED, DEFAULT_TICKETS, DemoOptions, DemoResult, run_demo, tally
from bridge.values import BoundedInt

__all__ = ["demo"]


@click.command()
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Leave the demo's config and ledger here. Default: a new temporary folder.",
)
@click.option(
    "--tickets",
    type=BoundedInt(100, 50_000),
    default=DEFAULT_TICKETS,
    show_default=True,
    help="Linked tickets to seed on each side.",
)
@click.option(
    "--seed", type=BoundedInt(0, 2**32 - 1), default=DEFAULT_SEED, show_default=True, hidden=True
)
@click.option(
    "--webhooks",
    is_flag=True,
    help="End with `bridge serve` on loopback: a deletion in each simulator crosses to "
    "the other by webhook, timed, with no scheduled run.",
)
def demo(folder: Path | None, tickets: int, seed: int, webhooks: bool) -> None:
    """Run the whole story against local simulators of both vendors.

    Starts SuperOffice and Zendesk simulators on free loopback ports with a simulated
    clock, seeds linked tickets with a history of deletions, restores and purges, migrates
    SuperOffice's deletion state to Zendesk, then runs scheduled syncs through rounds of
    agent activity while the clock passes both retention windows. Prints what each run
    did and writes the audit report. Rate limits are on, on the simulated clock.

    With --webhooks, a last step starts `bridge serve` in this process, registers both
    simulators' webhooks to it, deletes one ticket in each simulator and prints how many
    seconds each deletion took to reach the other side (about the [serve]
    coalesce_seconds wait, 1 s, plus the run).

    \b
    Examples:
      bridge demo
      bridge demo --webhooks              a deletion crossing in seconds
      bridge demo --dir ./demo && bridge --config ./demo/bridge.toml status
    """
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="bridge-demo-"))
    elif folder.exists() and (folder / "bridge.toml").exists():
        raise click.UsageError(f"{folder} already holds a bridge.toml; choose an empty --dir")
    folder = folder.absolute()
    click.echo(f"bridge demo in {folder}")
    click.echo(
        "Simulated SuperOffice and Zendesk on loopback; the team moves from SuperOffice to Zendesk."
    )
    options = DemoOptions(tickets=tickets, seed=seed, webhooks=webhooks)
    result = run_demo(folder, options, echo=click.echo)
    _print_summary(result)


def _print_summary(result: DemoResult) -> None:
    totals = tally(result)
    status = result.status
    base = status.get("base", {})
    attention = status.get("attention", {})
    click.echo("")
    click.echo(
        f"In all: {totals['seen']:,} changes seen, {totals['copied']:,} copied in bulk, "
        f"{totals['confirmed']:,} confirmed by re-reading, {totals['verified']:,} purges verified."
    )
    click.echo(f"Agreed states now: {_counts(base)}.")
    for side, states in result.vendor_states.items():
        click.echo(f"  {side} holds: {_counts(states)}")
    if attention:
        click.echo(
            f"Needs a person: {_counts(attention)} "
            "(`bridge conflicts list` shows them, `conflicts resolve` settles them)."
        )
    if result.report_path is not None:
        click.echo(f"Audit report: {result.report_path}")
    click.echo(f"Done in {result.seconds:.1f} s. The ledger and config stay in {result.folder}:")
    click.echo(f"  ticket-bridge --config {result.config_path} status")
    click.echo(f"  ticket-bridge --config {result.config_path} report")


def _counts(values: object) -> str:
    if not isinstance(values, dict) or not values:
        return "none"
    return ", ".join(f"{n:,} {name}" for name, n in sorted(values.items()))
