"""`bridge migrate`: bring a whole history of deletions across, once."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Mapping

import click

from bridge.cli.context import AppContext, fail, pass_app, print_json
from bridge.cli.exitcodes import ExitCode
from bridge.cli.progress import terminal_progress
from bridge.cli.runs import (
    OUTCOME_EXIT,
    StopFlag,
    adapters_or_exit,
    holding_lease,
    report_unavailable,
)
from bridge.core.contract import Adapter
from bridge.core.model import Side
from bridge.ledger import Ledger, default_holder
from bridge.ledger.tables import OperationStatus
from bridge.run.migrate import PURGE_NOT_COPIED, MigrationOptions, estimate, migration_run
from bridge.run.runner import RunResult
from bridge.run.state import RunState
from bridge.vendors.registry import SIDES

__all__ = ["migrate"]


def _preflight(adapters: dict[Side, Adapter]) -> None:
    """Both vendors reachable and authenticated, before anything is written."""
    failures = [
        f"{side}: {result.name}: {result.message}"
        for side, adapter in adapters.items()
        for result in adapter.check()
        if not result.ok
    ]
    if failures:
        click.echo("Error: a vendor check failed; nothing was written:", err=True)
        for line in failures:
            click.echo(f"  {line}", err=True)
        sys.exit(int(ExitCode.VENDOR))


def _interrupted_migration(ledger: Ledger) -> bool:
    """An earlier migration left planned or sent operations behind."""
    runs = [run for run in ledger.recent_runs(20) if run.kind == "migrate" and not run.dry_run]
    if not runs or runs[0].outcome == "converged":
        return False
    return bool(ledger.operations([OperationStatus.PLANNED, OperationStatus.SENT]))


def _summarise_plan(
    state: RunState, adapters: Mapping[Side, Adapter], target: Side
) -> dict[str, object]:
    """The migration's plan as `--dry-run` prints it, and as the estimate a real migration
    shows before it writes: writes per transition, links not migrated, API calls, time."""
    tally = state.tally
    adapter = adapters[target]
    per_minute = adapter.calls_per_minute()
    guess = estimate(
        tally.transitions(target),
        Counter(tally.not_written),
        batch_limit=adapter.batch_limit,
        job_limit=adapter.job_limit,
        calls_per_minute=per_minute,
        account_read=state.counts[f"{target}.changes_read"],
        page_size=adapter.change_page_size,
        pages_per_minute=adapter.changes_per_minute,
    )
    return {
        "transitions": dict(guess.transitions),
        "not_migrated": dict(guess.skipped),
        "api_calls": guess.calls,
        "estimated_seconds": round(guess.seconds, 1),
        "rate_limit_per_minute": per_minute,
        "purges_not_copied": tally.reason_count(PURGE_NOT_COPIED),
    }


@click.command()
@click.option(
    "--from",
    "source",
    type=click.Choice(list(SIDES)),
    required=True,
    help="The system whose deletion state is the truth.",
)
@click.option(
    "--to",
    "target",
    type=click.Choice(list(SIDES)),
    required=True,
    help="The system to change.",
)
@click.option(
    "--include-purges",
    is_flag=True,
    help="Purged in the source → soft-deleted then purged in the target.",
)
@click.option(
    "--skip-purges",
    is_flag=True,
    help="Purged in the source → only soft-deleted in the target.",
)
@click.option(
    "--restore", is_flag=True, help="Active in the source but deleted in the target → restored."
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the plan, calls and time; write nothing to a vendor or the ledger.",
)
@click.option("--resume", is_flag=True, help="Continue an interrupted migration.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan or summary as JSON.")
@pass_app
def migrate(
    app: AppContext,
    source: str,
    target: str,
    include_purges: bool,
    skip_purges: bool,
    restore: bool,
    dry_run: bool,
    resume: bool,
    as_json: bool,
) -> None:
    """Make every linked ticket's deletion state in the target match the source.

    Soft-deleted in the source → soft-deleted in the target; purged → soft-deleted then
    purged (with --include-purges; --skip-purges stops at the soft delete); active in the
    source but deleted in the target → restored (with --restore). Bulk calls of at most
    100 ids, as many vendor jobs in flight as the job limit allows. Interrupted? Run it
    again with --resume: nothing is sent twice, nothing skipped. When done, the bases are
    recorded, so `bridge sync` carries on from the migrated state.

    One pass: both sides are read once, every link is decided, and the plan is shown
    (writes per transition, links not migrated, API calls and time) before anything is
    recorded or written; then the writes go, with progress bars on a terminal. A source
    holding purges without --include-purges or --skip-purges stops there (exit 2, nothing
    planned or written). --dry-run shows the same plan and records nothing at all.

    A migration settles what earlier runs left exactly as `bridge sync` does: recorded
    vendor jobs are followed to their end, sent operations are confirmed by re-reading,
    and a purge whose answer was lost is sent again only once a re-read shows it did not
    happen (see `bridge sync --help`).

    \b
    Exit codes: 0 done, 1 failures to retry (run again with --resume), 2 usage or
    configuration error, 3 another run holds the lease, 4 attention needed
    (conflicts, failed or stuck operations), 5 a vendor could not be read: nothing
    was decided or written.

    \b
    Examples:
      bridge migrate --from superoffice --to zendesk --dry-run
      bridge migrate --from superoffice --to zendesk --include-purges
      bridge migrate --from superoffice --to zendesk --resume
    """
    if source == target:
        fail("--from and --to name the same system; a migration needs two")
    if include_purges and skip_purges:
        fail("--include-purges and --skip-purges contradict each other; choose one")
    config = app.config()
    options = MigrationOptions(
        Side(source), Side(target), include_purges=include_purges, restore=restore
    )
    holder = default_holder()
    stop = StopFlag()
    with app.ledger() as ledger:
        if ledger.count_links() == 0:
            fail(
                "the ledger has no links: import them (bridge link import FILE.csv) or "
                "discover them (bridge link discover) first"
            )
        if not dry_run and not resume and _interrupted_migration(ledger):
            fail("an earlier migration was interrupted with work left: rerun with --resume")
        adapters = adapters_or_exit(config)
        _preflight(adapters)
        if dry_run:
            run = migration_run(ledger, adapters, options, dry_run=True, holder=holder)
            with stop.installed(), terminal_progress():
                planned = run.execute()
            report_unavailable(planned)
            if planned.outcome == "unavailable":
                sys.exit(int(ExitCode.VENDOR))
            _print_plan(_summarise_plan(run.state, adapters, Side(target)), as_json)
            return
        shown: dict[str, object] = {}

        def review(state: RunState) -> bool:
            """Both sides are read and every link decided, nothing recorded yet: show the
            estimate, or refuse purges that no flag says what to do with."""
            if state.unavailable:
                return True  # the run ends `unavailable` and writes nothing
            shown.update(_summarise_plan(state, adapters, Side(target)))
            if shown["purges_not_copied"] and not (include_purges or skip_purges):
                return False
            if not as_json:
                _print_plan(shown, as_json=False, heading="Migration plan:")
            return True

        with (
            holding_lease(ledger, config, holder) as renew,
            stop.installed(),
            terminal_progress(),
        ):
            result = migration_run(
                ledger,
                adapters,
                options,
                holder=holder,
                stop_requested=stop,
                on_batch=renew,
                review=review,
            ).execute()
    if result.outcome == "declined":
        fail(
            f"{shown['purges_not_copied']} tickets are purged in {source}: rerun with "
            f"--include-purges to purge them in {target} too, or --skip-purges to only "
            "soft-delete them; nothing was written"
        )
    _print_summary(result, shown, as_json)
    report_unavailable(result)
    sys.exit(int(OUTCOME_EXIT.get(result.outcome, ExitCode.RETRY)))


def _print_plan(
    summary: dict[str, object],
    as_json: bool,
    heading: str = "Migration plan (dry run: nothing was written):",
) -> None:
    if as_json:
        print_json(summary)
        return
    click.echo(heading)
    transitions = summary["transitions"]
    assert isinstance(transitions, dict)
    for name, count in transitions.items() or {"nothing to change": 0}.items():
        click.echo(f"  {name:<28} {count}")
    not_migrated = summary["not_migrated"]
    assert isinstance(not_migrated, dict)
    for reason, count in not_migrated.items():
        click.echo(f"  not migrated: {reason:<40} {count}")
    purges = summary["purges_not_copied"]
    if purges:
        click.echo(
            f"  purges not copied: {purges} (purged in the source; --include-purges copies them)"
        )
    click.echo(
        f"API calls: about {summary['api_calls']}; time: about {summary['estimated_seconds']} s "
        f"at {summary['rate_limit_per_minute']:.0f} requests/min"
    )


def _print_summary(result: RunResult, plan: dict[str, object], as_json: bool) -> None:
    sent = {k: v for k, v in result.counts.items() if k.endswith(".sent")}
    if as_json:
        print_json(
            {
                "run": result.run_id,
                "outcome": result.outcome,
                "counts": dict(result.counts),
                "plan": plan,
            }
        )
        return
    click.echo(f"Migration run {result.run_id}: {result.outcome}")
    for key, count in sorted(sent.items()):
        click.echo(f"  {key.removesuffix('.sent').replace('.', ' '):<28} {count}")
    for key in ("confirmed", "pending_retention", "failed", "retry", "decision.conflict"):
        if result.counts.get(key):
            click.echo(f"  {key:<28} {result.counts[key]}")
