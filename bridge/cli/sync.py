"""`bridge sync` and `bridge conflicts`."""

from __future__ import annotations

import sys
from datetime import timedelta

import click

from bridge.cli.context import AppContext, fail, pass_app, print_json
from bridge.cli.exitcodes import ExitCode
from bridge.cli.runs import (
    OUTCOME_EXIT,
    StopFlag,
    adapters_or_exit,
    holding_lease,
    report_unavailable,
)
from bridge.config import Config
from bridge.core.decide import ConflictPolicy, Direction
from bridge.factory import policy_from_config
from bridge.ledger import Ledger, default_holder
from bridge.links import named_ids
from bridge.run.plan import iter_plan
from bridge.run.resolve import LinkTicket, Prefer, ResolveError, resolve
from bridge.run.runner import RunResult, SyncRun
from bridge.run.state import RunOptions
from bridge.values import Interval, TicketId
from bridge.vendors.registry import MAX_TICKET_ID, SIDES, SUPEROFFICE

__all__ = ["conflicts", "sync"]


def _run_once(
    config: Config, ledger: Ledger, options: RunOptions, holder: str, stop: StopFlag
) -> RunResult:
    adapters = adapters_or_exit(config)
    with holding_lease(ledger, config, holder) as renew:
        run = SyncRun(
            ledger,
            adapters,
            options,
            holder=holder,
            stop_requested=stop,
            on_batch=renew,
        )
        return run.execute()


def _report(result: RunResult, as_json: bool, dry_run: bool) -> None:
    if as_json:
        print_json(
            {
                "run": result.run_id,
                "outcome": result.outcome,
                "counts": dict(result.counts),
                "plan": [line.as_json() for line in result.plan],
            }
        )
        return
    if dry_run:
        click.echo("Dry run: nothing was written to either vendor or to the ledger.")
        for line in iter_plan(result.plan):
            click.echo(f"  {line}")
        if not result.plan:
            click.echo("  nothing to do")
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items())) or "no changes"
    click.echo(f"Run {result.run_id}: {result.outcome} ({counts})")
    report_unavailable(result)


@click.command()
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing anywhere.")
@click.option(
    "--direction",
    type=click.Choice(Direction.choices(SIDES)),
    help="Override sync.direction for this run.",
)
@click.option(
    "--conflict-policy",
    type=click.Choice(ConflictPolicy.choices(SIDES)),
    help="Override sync.conflict_policy for this run.",
)
@click.option(
    "--allow-mass-purge",
    is_flag=True,
    help="Lift max_purges_per_run for this run (held purges are released).",
)
@click.option(
    "--every",
    "every",
    metavar="INTERVAL",
    type=Interval(),
    help="Run again every INTERVAL (90s, 5m, 2h, 1d; 1s to 7d) until SIGTERM or Ctrl-C.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
@pass_app
def sync(
    app: AppContext,
    dry_run: bool,
    direction: str | None,
    conflict_policy: str | None,
    allow_mass_purge: bool,
    every: timedelta | None,
    as_json: bool,
) -> None:
    """One reconciliation run: copy soft deletes, restores and purges across.

    Reads what changed on both sides since the last run, decides per link against the
    last agreed state (three-way), writes in bulk, confirms by re-reading and records
    everything in the ledger. Safe to kill at any point: the next run finishes the work.

    \b
    Each run first settles what earlier runs left: vendor jobs they recorded are
    polled and followed to their end, and every operation still `sent` is
    confirmed by re-reading its target. A write whose answer was lost (timeout,
    dropped connection, 5xx, unreadable reply) is sent again only when that is
    harmless (soft delete, restore) or once a re-read shows it did not happen:
    a purge is never sent twice. Each run also sweeps a bounded number of links
    (sync.sweep_max_per_run) for tickets that vanished without a trace in the
    change streams (an admin's hard delete, a grace period ending), so that
    every link is checked at least every sync.sweep_period_hours.

    \b
    Exit codes:
      0  converged
      1  failures to retry: the next run retries them (or the run was interrupted)
      2  configuration error: nothing was read or written
      3  another run holds the lease
      4  attention needed: conflicts, divergences, held purges, failed
         operations, or operations failing or unconfirmed for longer than
         sync.attention_after_minutes (see `bridge status`)
      5  a vendor could not be read: nothing was decided or written, the
         cursors stay where they were (see the log for the vendor's error)

    \b
    Examples:
      bridge sync --dry-run              show the plan
      bridge sync                        one run (cron, systemd timer, Kubernetes CronJob)
      bridge sync --every 5m             loop; SIGTERM finishes the batch and exits
    """
    config = app.config()
    interval = every
    policy = policy_from_config(config)
    policy = type(policy)(
        direction=Direction.parse(direction, SIDES) if direction else policy.direction,
        conflict_policy=ConflictPolicy.parse(conflict_policy, SIDES)
        if conflict_policy
        else policy.conflict_policy,
        propagate_purges=policy.propagate_purges,
        propagate_retention_purges=policy.propagate_retention_purges,
    )
    options = RunOptions(
        policy=policy,
        dry_run=dry_run,
        max_purges_per_run=config.sync.max_purges_per_run,
        allow_mass_purge=allow_mass_purge,
        attention_after=timedelta(minutes=config.sync.attention_after_minutes),
        sweep_period=timedelta(hours=config.sync.sweep_period_hours),
        sweep_max=config.sync.sweep_max_per_run,
    )
    stop = StopFlag()
    holder = default_holder()
    with app.ledger() as ledger, stop.installed():
        while True:
            result = _run_once(config, ledger, options, holder, stop)
            _report(result, as_json, dry_run)
            if interval is None or stop():
                break
            if stop.event.wait(interval.total_seconds()):
                break
    sys.exit(int(OUTCOME_EXIT.get(result.outcome, ExitCode.RETRY)))


@click.group()
def conflicts() -> None:
    """List and settle links that need a person: conflicts and divergences."""


@conflicts.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def conflicts_list(app: AppContext, as_json: bool) -> None:
    """Links with an open conflict, divergence, held purge or failed operation."""
    with app.ledger() as ledger:
        pairs = ledger.attention()
    rows = [
        {
            **named_ids({side: p.ids.ticket(side) for side in SIDES}),
            "kind": p.attention,
            "base": p.base,
            **{side: p.state(side) for side in SIDES},
            "reason": p.attention_reason,
        }
        for p in pairs
    ]
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("Nothing needs attention.")
        return
    click.echo(f"{'superoffice':>12} {'zendesk':>10}  {'kind':<11} base → so / zd   reason")
    for row in rows:
        click.echo(
            f"{row['superoffice_id']:>12} {row['zendesk_id']:>10}  {row['kind']:<11} "
            f"{row['base'] or '-'} → {row['superoffice'] or '?'} / {row['zendesk'] or '?'}   "
            f"{row['reason'] or ''}"
        )


@conflicts.command("resolve")
@click.argument(
    "superoffice_id", metavar="LINK", type=TicketId(SUPEROFFICE, MAX_TICKET_ID[SUPEROFFICE])
)
@click.option(
    "--prefer",
    type=click.Choice(Prefer.choices(SIDES)),
    required=True,
    help="Which side's state wins; `active` keeps the ticket wherever it is active.",
)
@pass_app
def conflicts_resolve(app: AppContext, superoffice_id: int, prefer: str) -> None:
    """Settle the conflict or divergence of LINK (its SuperOffice ticket id).

    The other side is made to match the preferred one by the next `bridge sync`.
    A purged ticket cannot come back: preferring an active side over a purged one fails.

    \b
    Example:
      bridge conflicts resolve 1001 --prefer zendesk
    """
    ticket = LinkTicket(SUPEROFFICE, superoffice_id, f"SuperOffice ticket {superoffice_id}")
    with app.ledger() as ledger:
        try:
            decision = resolve(ledger, SIDES, ticket, Prefer.parse(prefer, SIDES))
        except ResolveError as exc:
            fail(str(exc))
    steps = " then ".join(t.value for t in decision.transitions) or "nothing to write"
    target = decision.target if decision.target else "either side"
    click.echo(f"Planned for {target}: {steps}. The next `bridge sync` applies it.")
