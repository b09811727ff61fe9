"""`bridge sync` and `bridge conflicts`."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from bridge.cli.context import AppContext, fail, pass_app, print_json
from bridge.cli.core import SUCCESS_OUTCOMES
from bridge.cli.exitcodes import ExitCode
from bridge.cli.operator import operator_name, operator_option
from bridge.cli.progress import terminal_progress
from bridge.cli.runs import OUTCOME_EXIT, StopFlag, report_unavailable
from bridge.cli.schedule import backs_off, next_wait, write_heartbeat
from bridge.config import Config
from bridge.core.decide import ConflictPolicy, Direction
from bridge.errors import BridgeError
from bridge.factory import policy_from_config
from bridge.ledger import LeaseHeldError, Ledger, default_holder
from bridge.ledger.tables import utcnow
from bridge.links import named_ids
from bridge.logging import redact_text
from bridge.once import run_once, run_options
from bridge.run.plan import iter_plan
from bridge.run.resolve import LinkTicket, Prefer, ResolveError, resolve
from bridge.run.runner import RunResult
from bridge.run.state import RunOptions
from bridge.run.summary import PlanSummary
from bridge.values import PORT, Interval, TicketId
from bridge.vendors.registry import MAX_TICKET_ID, SIDES, SUPEROFFICE

if TYPE_CHECKING:
    from bridge.metrics import LedgerCollector

__all__ = ["conflicts", "sync"]


def _run_once(
    config: Config, ledger: Ledger, options: RunOptions, holder: str, stop: StopFlag
) -> tuple[RunResult, PlanSummary | None]:
    """One run (`bridge.once.run_once`), with progress bars on a terminal."""
    with terminal_progress():
        return run_once(config, ledger, options, holder=holder, stop=stop)


def _report(result: RunResult, summary: PlanSummary | None, as_json: bool, details: bool) -> None:
    if as_json:
        print_json(
            {
                "run": result.run_id,
                "outcome": result.outcome,
                "counts": dict(result.counts),
                "plan": [line.as_json() for line in result.plan],
                **({"summary": summary.as_json()} if summary else {}),
            }
        )
        return
    if summary is not None:
        click.echo("Dry run: nothing was written to either vendor or to the ledger.")
        for line in _summary_lines(summary):
            click.echo(line)
        if details:
            click.echo("Per link:")
            for line in iter_plan(result.plan):
                click.echo(f"  {line}")
        elif result.plan or summary.groups:
            click.echo("The plan per link: add --details (or --json).")
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items())) or "no changes"
    name = f"Run {result.run_id}" if result.run_id is not None else "Dry run"
    click.echo(f"{name}: {result.outcome} ({counts})")
    report_unavailable(result)


def _summary_lines(summary: PlanSummary) -> Iterator[str]:
    """The dry run's summary: the writes per direction and transition (links, calls,
    time), then the purges it would hold and what needs a person (the conflicts and
    divergences it found, and those the ledger held open before)."""
    if not summary.groups:
        yield "  nothing to do: no write planned"
    for group in summary.groups:
        direction = f"{group.source} → {group.target}"
        yield (
            f"  {direction:<26} {group.transition:<12} {group.count:>7} links "
            f"{group.calls:>5} calls  about {_duration(timedelta(seconds=group.seconds))}"
        )
    if len(summary.groups) > 1:
        writes = sum(group.count for group in summary.groups)
        time = _duration(timedelta(seconds=summary.seconds))
        yield f"  {'in all':<39} {writes:>7} writes {summary.calls:>4} calls  about {time}"
    if summary.held_purges:
        yield (
            f"Held purges: {summary.held_purges} (over max_purges_per_run; "
            "--allow-mass-purge releases them)"
        )
    conflicts = summary.outcomes.get("conflict", 0)
    divergences = summary.outcomes.get("divergence", 0)
    opened = ", ".join(f"{kind} {n}" for kind, n in sorted(summary.open_attention.items()))
    yield (
        f"Conflicts: {conflicts}; divergences: {divergences}"
        + (f" (open before this run: {opened})" if opened else "")
    )
    for reason, count in sorted(summary.not_written.items()):
        if not reason.startswith(("conflict", "divergence")):
            yield f"  not written: {reason} ({count})"


@click.command()
@click.option(
    "--dry-run",
    is_flag=True,
    help="Read both sides and print what a run would do, summed up: writes per direction "
    "and transition (links, calls, time), held purges, conflicts, divergences. Nothing is "
    "written to either vendor or to the ledger.",
)
@click.option(
    "--details",
    is_flag=True,
    help="With --dry-run: the plan per link too, after the summary (--json always has it).",
)
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
    help="Lift max_purges_per_run for this run (held purges are released); who did it is "
    "recorded (--operator).",
)
@operator_option("lifted the purge cap (with --allow-mass-purge only)")
@click.option(
    "--every",
    "every",
    metavar="INTERVAL",
    type=Interval(),
    help="Run again every INTERVAL (90s, 5m, 2h, 1d; 1s to 7d) until SIGTERM or Ctrl-C. "
    "A tick whose lease is held is skipped; a vendor down backs off (jitter, up to 1h); "
    "only a configuration error ends the loop.",
)
@click.option(
    "--heartbeat",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="After each run, replace FILE with a JSON line (time, run, outcome, exit code, "
    "next run): a liveness probe checks its age.",
)
@click.option(
    "--metrics-file",
    metavar="PATH",
    type=click.Path(dir_okay=False, path_type=Path),
    help="After each run, replace PATH (atomically) with the metrics in the Prometheus "
    "text format, for node_exporter's textfile collector (name it *.prom).",
)
@click.option(
    "--metrics-port",
    metavar="PORT",
    type=PORT,
    help="With --every: serve the metrics at http://HOST:PORT/metrics while the loop runs "
    "(0: any free port, printed at start).",
)
@click.option(
    "--metrics-host",
    metavar="HOST",
    default="127.0.0.1",
    show_default=True,
    help="The address --metrics-port listens on (0.0.0.0: every interface).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
@pass_app
def sync(
    app: AppContext,
    dry_run: bool,
    details: bool,
    direction: str | None,
    conflict_policy: str | None,
    allow_mass_purge: bool,
    operator: str | None,
    every: timedelta | None,
    heartbeat: Path | None,
    metrics_file: Path | None,
    metrics_port: int | None,
    metrics_host: str,
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
      5  a vendor is unavailable or refused us: its change stream could
         not be read (host unknown, connection refused, down all run: nothing
         was decided or written, the cursors stayed), or it refused our
         credentials or rights (401, 403): a person checks `bridge check`
      6  an unexpected error inside bridge (a bug)

    \b
    For a scheduler, 1 and 3 mean "retry later" (the next run does it);
    2, 4, 5 and 6 need a person (docs/scheduling.md).

    \b
    With --every, one process keeps going: a tick whose lease another run
    holds is skipped with one line; after exit 5 or 6 the wait doubles each
    time (at random between half and all of it, at most an hour) until a run
    succeeds; each run prints when the next is due. It stops on SIGTERM or
    Ctrl-C (the batch in flight is finished and recorded) and on a
    configuration error; it exits with the last run's code.

    \b
    --dry-run reads both sides as a run would and prints a summary: per
    direction and transition the links, bulk calls and time; the purges
    max_purges_per_run would hold (each counted once); new conflicts and
    divergences beside those already open. The plan per link comes with
    --details or --json. It records nothing, not even a run, and takes no lease.

    \b
    Metrics (Prometheus text format, from the ledger): runs by outcome,
    transitions copied by kind and direction, links needing a person,
    operations pending by age, vendor calls and 429s, the last success time.
    --metrics-file writes them after every run (cron: node_exporter's textfile
    collector); with --every, --metrics-port serves them over HTTP.

    \b
    On a terminal, progress bars show each phase (reading each side, deciding,
    writing, waiting for vendor jobs) with counts, rate and time left; never in
    a pipe or under cron (BRIDGE_PROGRESS=always|never overrides).

    \b
    --allow-mass-purge is an operator's decision: the run records who made it
    (--operator NAME, else your login name), and `bridge report` shows it on
    the run and on every purge it let through.

    \b
    Examples:
      bridge sync --dry-run              what a run would do, summed up
      bridge sync --dry-run --details    ... and per link
      bridge sync                        one run (cron, systemd timer, Kubernetes CronJob)
      bridge sync --metrics-file /var/lib/node_exporter/textfile/bridge.prom
      bridge sync --allow-mass-purge --operator "Jane Roe"   release held purges
      bridge sync --every 5m             loop; SIGTERM finishes the batch and exits
      bridge sync --every 5m --heartbeat /run/bridge/heartbeat --metrics-port 9464
    """
    if details and not dry_run:
        fail("--details shows a dry run's plan per link: add --dry-run")
    if metrics_port is not None and every is None:
        fail(
            "--metrics-port serves the metrics while `sync --every` runs; for one run use "
            "--metrics-file"
        )
    if operator is not None and not allow_mass_purge:
        fail("--operator names who gave --allow-mass-purge: give both, or neither")
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
    options = run_options(
        config,
        policy=policy,
        dry_run=dry_run,
        allow_mass_purge=allow_mass_purge,
        operator=operator_name(operator) if allow_mass_purge else None,
        # a dry run's line per link is kept only to be shown
        keep_plan=not dry_run or details or as_json,
    )
    stop = StopFlag()
    holder = default_holder()
    output = _Output(as_json, details, heartbeat, metrics_file)
    with app.ledger() as ledger, stop.installed():
        if metrics_file is not None or metrics_port is not None:
            output.collector = _collector(ledger)
        if interval is None:
            result, summary = _run_once(config, ledger, options, holder, stop)
            code = _exit_code(result)
            output.after_run(ledger, result, summary, code, None)
            sys.exit(int(code))
        server = None
        if metrics_port is not None and output.collector is not None:
            from bridge.metrics import registry_for, serve_metrics

            output.refresh(ledger)
            server = serve_metrics(registry_for(output.collector), metrics_host, metrics_port)
            click.echo(f"Metrics at {server.url}", err=True)
        try:
            code = _loop(app, config, ledger, options, holder, stop, interval, output)
        finally:
            if server is not None:
                server.stop()
    sys.exit(int(code))


def _collector(ledger: Ledger) -> LedgerCollector:
    """The metrics' collector: only a run asked for metrics reads their facts from the
    ledger (and imports prometheus_client)."""
    from bridge.metrics import LedgerCollector

    return LedgerCollector(ledger.sides)


@dataclass
class _Output:
    """What follows each run: its report, the heartbeat, the metrics (when asked for)."""

    as_json: bool
    details: bool
    heartbeat: Path | None
    metrics_file: Path | None
    collector: LedgerCollector | None = None

    def refresh(self, ledger: Ledger) -> None:
        """Read the metrics' facts from the ledger again; write the metrics file."""
        if self.collector is None:
            return
        self.collector.refresh(ledger, utcnow(), SUCCESS_OUTCOMES)
        if self.metrics_file is not None:
            from bridge.metrics import registry_for, write_metrics_file

            write_metrics_file(self.metrics_file, registry_for(self.collector))

    def after_run(
        self,
        ledger: Ledger,
        result: RunResult | None,
        summary: PlanSummary | None,
        code: ExitCode,
        due: datetime | None,
    ) -> None:
        if result is not None:
            _report(result, summary, self.as_json, self.details)
        if self.heartbeat:
            write_heartbeat(self.heartbeat, _heartbeat_facts(result, code, due), utcnow())
        self.refresh(ledger)


def _exit_code(result: RunResult) -> ExitCode:
    return OUTCOME_EXIT.get(result.outcome, ExitCode.RETRY)


def _heartbeat_facts(
    result: RunResult | None, code: ExitCode, next_run: datetime | None
) -> dict[str, object]:
    return {
        "pid": os.getpid(),
        "run": result.run_id if result else None,
        "outcome": result.outcome if result else "skipped",
        "exit_code": int(code),
        "next_run_at": next_run.isoformat(timespec="seconds") if next_run else None,
    }


def _loop(
    app: AppContext,
    config: Config,
    ledger: Ledger,
    options: RunOptions,
    holder: str,
    stop: StopFlag,
    interval: timedelta,
    output: _Output,
) -> ExitCode:
    """Run every `interval` until SIGTERM/SIGINT; return the last run's exit code.

    A lease held by another run skips the tick; a vendor down (or a failure inside
    bridge) backs off with jitter; a configuration error (exit 2) ends the loop."""
    failures_in_a_row = 0
    code = ExitCode.OK
    while True:
        result: RunResult | None = None
        summary: PlanSummary | None = None
        try:
            result, summary = _run_once(config, ledger, options, holder, stop)
        except LeaseHeldError as exc:
            code = ExitCode.LEASE_HELD
            click.echo(f"Skipped this run: {redact_text(str(exc))}", err=True)
        except BridgeError as exc:
            if exc.exit_code == ExitCode.USAGE:
                raise
            code = exc.exit_code
            click.echo(f"Error: {redact_text(str(exc))}", err=True)
        except Exception as exc:
            if app.debug:
                raise
            code = ExitCode.INTERNAL
            click.echo(
                f"Error: internal error ({type(exc).__name__}: {redact_text(str(exc))[:300]}); "
                "the loop goes on (run with --debug for the traceback)",
                err=True,
            )
        if result is not None:
            code = _exit_code(result)
        if stop():
            output.after_run(ledger, result, summary, code, None)
            break
        failures_in_a_row = failures_in_a_row + 1 if backs_off(code) else 0
        wait = next_wait(interval, failures_in_a_row)
        due = utcnow() + wait
        output.after_run(ledger, result, summary, code, due)
        backoff = f", backing off: {failures_in_a_row} failed in a row" if failures_in_a_row else ""
        click.echo(
            f"Next run at {due.isoformat(timespec='seconds')} (in {_duration(wait)}{backoff}).",
            err=True,
        )
        if stop.event.wait(wait.total_seconds()):
            break
    return code


def _duration(wait: timedelta) -> str:
    seconds = round(wait.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


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
@operator_option("settled the conflict")
@pass_app
def conflicts_resolve(
    app: AppContext, superoffice_id: int, prefer: str, operator: str | None
) -> None:
    """Settle the conflict or divergence of LINK (its SuperOffice ticket id).

    The other side is made to match the preferred one by the next `bridge sync`.
    A purged ticket cannot come back: preferring an active side over a purged one fails.
    Who settled it (--operator NAME, else your login name) is recorded with the
    resolution; `bridge report` shows it, and no longer counts the conflict as open.

    \b
    Examples:
      bridge conflicts resolve 1001 --prefer zendesk
      bridge conflicts resolve 1001 --prefer active --operator "Jane Roe"
    """
    ticket = LinkTicket(SUPEROFFICE, superoffice_id, f"SuperOffice ticket {superoffice_id}")
    who = operator_name(operator)
    with app.ledger() as ledger:
        try:
            decision = resolve(ledger, SIDES, ticket, Prefer.parse(prefer, SIDES), operator=who)
        except ResolveError as exc:
            fail(str(exc))
    steps = " then ".join(t.value for t in decision.transitions) or "nothing to write"
    target = decision.target if decision.target else "either side"
    click.echo(
        f"Planned for {target}: {steps} (resolved by {who}). The next `bridge sync` applies it."
    )
