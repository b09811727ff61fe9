"""`bridge init`, `bridge status`, `bridge check`."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click

from bridge.cli.context import AppContext, fail, pass_app, print_json
from bridge.cli.exitcodes import ExitCode
from bridge.config import (
    Config,
    check_secrets,
    config_warnings,
    example_config_text,
    load_config,
)
from bridge.core.contract import CheckResult
from bridge.core.model import id_column
from bridge.factory import build_adapters
from bridge.ledger import Ledger
from bridge.ledger.tables import utcnow
from bridge.links import named_ids
from bridge.logging import redact_text
from bridge.secrets import SecretError
from bridge.values import Interval
from bridge.vendors.registry import SIDES, vendor

__all__ = ["SUCCESS_OUTCOMES", "check", "init", "pair_health", "status"]

#: a run that read both sides and settled every write: it counts as the pair's last
#: success (`attention` included: what needs a person is reported on its own)
SUCCESS_OUTCOMES = ("converged", "attention")


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="Folder for bridge.toml and the ledger.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing bridge.toml.")
@click.option(
    "--ledger-only",
    is_flag=True,
    help="Keep the config (--config, $BRIDGE_CONFIG or ./bridge.toml) and create only the "
    "ledger it names (an existing one is opened and migrated, never emptied).",
)
@click.pass_context
def init(ctx: click.Context, directory: Path, force: bool, ledger_only: bool) -> None:
    """Write DIR/bridge.toml from the commented example and create the ledger beside it.

    \b
    Examples:
      ticket-bridge init --dir /etc/bridge
      $EDITOR /etc/bridge/bridge.toml
      ticket-bridge --config /etc/bridge/bridge.toml check
      ticket-bridge --config /etc/bridge/bridge.toml init --ledger-only   (config kept)
    """
    if ledger_only:
        if force:
            fail("--force rewrites the config; --ledger-only keeps it: choose one")
        app = ctx.find_object(AppContext)
        assert app is not None
        with app.ledger(create=True) as ledger:
            where = ledger.path or app.config().ledger_url
        click.echo(f"Ledger ready: {where} (config {app.config_path} unchanged)")
        return
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / "bridge.toml"
    if config_path.exists() and not force:
        fail(
            f"{config_path} already exists; use --force to overwrite it, or --ledger-only "
            "to create just its ledger"
        )
    config_path.write_text(example_config_text(), encoding="utf-8")
    config = load_config(config_path)
    with Ledger.open(config.ledger_url, sides=SIDES, create=True) as ledger:
        where = ledger.path or config.ledger_url
    click.echo(f"Wrote {config_path}")
    click.echo(f"Created ledger {where}")
    click.echo(
        "Next: edit the [zendesk] and [superoffice] sections, then run `ticket-bridge check`."
    )


def _tickets(row: dict[str, object]) -> str:
    """`superoffice 1 / zendesk 2`: a status row's tickets, side by side."""
    return " / ".join(f"{side} {row[id_column(side)]}" for side in SIDES)


def pair_health(
    sides: Iterable[str],
    last_success: datetime | None,
    last_success_run: int | None,
    now: datetime,
    overdue_after: timedelta,
) -> dict[str, Any]:
    """Whether the pair of sides has had a successful run recently enough: what a monitor
    alerts on. Never succeeded counts as overdue."""
    age = None if last_success is None else (now - last_success).total_seconds()
    return {
        "sides": list(sides),
        "last_success_at": last_success.isoformat() if last_success else None,
        "last_success_run": last_success_run,
        "seconds_since_success": None if age is None else int(age),
        "overdue_after_seconds": int(overdue_after.total_seconds()),
        "overdue": age is None or age > overdue_after.total_seconds(),
    }


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option(
    "--overdue-after",
    metavar="INTERVAL",
    type=Interval(),
    help="Call the pair overdue when its last successful run is older than this (90s, 45m, "
    "2h). Default: sync.attention_after_minutes (60), the age at which a stuck operation "
    "also alerts: twelve missed 5-minute runs, far inside the shortest retention window.",
)
@pass_app
def status(app: AppContext, as_json: bool, overdue_after: timedelta | None) -> None:
    """Links, states per side, open conflicts, pending operations, the last runs, and when
    the pair last succeeded; with workers (`bridge worker`), each pair's queue: runs due,
    running, waiting for a retry, and failed in the last 24 hours.

    A successful run read both sides and settled its writes (outcome converged, or
    attention: what needs a person is listed on its own). `health.overdue` in the JSON
    is true when there is none within --overdue-after: a monitor's one field to alert on.

    \b
    Examples:
      bridge status
      bridge status --json | jq '.health[0].overdue'
      bridge status --json --overdue-after 30m
    """
    pairs = app.pairs()
    summaries = {name: _pair_status(app, config, overdue_after) for name, config in pairs.items()}
    for name, counts in _queue_status(pairs).items():
        summaries[name]["queue"] = counts.as_json()
    if len(summaries) > 1:
        if as_json:
            print_json(
                {
                    "pairs": summaries,
                    "health": [summary["health"][0] for summary in summaries.values()],
                }
            )
            return
        for name, summary in summaries.items():
            click.echo(f"== pair {name}")
            _echo_status(summary)
        return
    (summary,) = summaries.values()
    if as_json:
        print_json(summary)
        return
    _echo_status(summary)


def _pair_status(
    app: AppContext, config: Config, overdue_after: timedelta | None
) -> dict[str, Any]:
    """One pair's status: what `status --json` prints for it."""
    stuck_after = timedelta(minutes=config.sync.attention_after_minutes)
    overdue = overdue_after or stuck_after
    with app.ledger(config=config) as ledger:
        summary = ledger.status(stuck_after=stuck_after)
        last = ledger.last_run(SUCCESS_OUTCOMES)
    for row in [*summary["needs_attention"], *summary["stuck_operations"]["rows"]]:
        row.update(named_ids(row.pop("tickets")))
    last_at = (last.ended_at or last.started_at) if last else None
    health = pair_health(SIDES, last_at, last.id if last else None, utcnow(), overdue)
    summary["pair"] = health["pair"] = config.pair
    summary["health"] = [health]
    return summary


def _queue_status(pairs: dict[str, Config]) -> dict[str, Any]:
    """Each pair's jobs in the workers' queue (`bridge worker`): only with the ledger on
    PostgreSQL and once a worker has created the queue; a queue that cannot be read is
    said on stderr and left out, never failing the status."""
    first = next(iter(pairs.values()))
    url = first.shared_ledger_url or first.ledger_url
    if not url.startswith("postgresql"):
        return {}
    # the queue's module (and psycopg) only where there can be a queue: a scheduled sync
    # on SQLite, which imports this module, starts without them
    from bridge.worker.queue import queue_conninfo, queue_counts

    try:
        counts = queue_counts(queue_conninfo(url), list(pairs))
    except Exception as exc:  # the ledger was read: the queue's trouble is a footnote
        click.echo(f"Warning: the workers' queue cannot be read ({type(exc).__name__})", err=True)
        return {}
    return dict(counts or {})


def _echo_status(summary: dict[str, Any]) -> None:
    health = summary["health"][0]
    click.echo(f"Ledger: {summary['ledger']} (schema {summary['schema_version']})")
    click.echo(
        "Last success: "
        + (
            f"run {health['last_success_run']} at {health['last_success_at']}"
            if health["last_success_run"]
            else "none"
        )
        + (" (OVERDUE)" if health["overdue"] else "")
    )
    click.echo(f"Links: {summary['links']}")
    for side in (*SIDES, "base"):
        states = ", ".join(f"{k} {v}" for k, v in sorted(summary[side].items())) or "none"
        click.echo(f"  {side:<12} {states}")
    attention = summary["attention"]
    click.echo(
        "Needs attention: "
        + (", ".join(f"{k} {v}" for k, v in sorted(attention.items())) if attention else "nothing")
    )
    for row in summary["needs_attention"]:
        click.echo(f"  {row['kind']:<11} {_tickets(row)}: {row['reason'] or ''}")
    if attention:
        click.echo("  (all of them: `bridge conflicts list`)")
    operations = summary["operations"]
    click.echo(
        f"Operations: {summary['pending_operations']} pending"
        + (
            " (" + ", ".join(f"{k} {v}" for k, v in sorted(operations.items())) + ")"
            if operations
            else ""
        )
    )
    stuck = summary["stuck_operations"]
    if stuck["count"]:
        click.echo(
            f"Stuck: {stuck['count']} operation(s) failing or unconfirmed for over "
            f"{stuck['older_than_minutes']} min (exit 4 until settled)"
        )
        for row in stuck["rows"]:
            click.echo(
                f"  {row['transition']} on {row['target']} ({_tickets(row)}): {row['status']}, "
                f"{row['age_minutes']} min, {row['attempts']} attempt(s): {row['reason']}"
            )
    queue = summary.get("queue")
    if queue is not None:
        retry = f" (next at {queue['next_retry_at']})" if queue["next_retry_at"] else ""
        turns = f", {queue['waiting_turn']} back with a shared account's turn"
        click.echo(
            f"Queue: {queue['due']} due, {queue['running']} running, {queue['retrying']} "
            f"retrying{retry}{turns if queue['waiting_turn'] else ''}, {queue['failed']} "
            "failed in 24h"
        )
    if not summary["runs"]:
        click.echo("Runs: none yet")
    for run in summary["runs"]:
        flag = " (dry run)" if run["dry_run"] else ""
        unannounced = sum(n for k, n in run["counts"].items() if k.endswith(".unannounced"))
        click.echo(
            f"  run {run['id']}: {run['kind']}{flag} {run['started_at']} → "
            f"{run['ended_at'] or 'running'}: {run['outcome']}"
            + (f" ({unannounced} change(s) no webhook announced)" if unannounced else "")
        )


@click.command()
@click.option("--offline", is_flag=True, help="Only the config and the ledger; no vendor calls.")
@click.option(
    "--deep",
    is_flag=True,
    help="Also probe, read-only (GET requests only), each vendor behaviour bridge assumes "
    "but no vendor document or recording confirms (docs/vendor-fidelity.md). Run it once "
    "against a new tenant, ideally with a few deleted tickets in it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print every check as one JSON object.")
@pass_app
def check(app: AppContext, offline: bool, deep: bool, as_json: bool) -> None:
    """Validate the config, the secrets, the ledger and (unless --offline) vendor access.

    Every problem is printed on one line; the exit code is 0 when all is well,
    2 for configuration or ledger problems, 5 when a vendor check fails. With --deep,
    each assumed behaviour gets a line too: ok (seen), FAIL (contradicted: bridge would
    misread this tenant) or "not exercised" (nothing on the tenant to look at).

    A host that does not resolve or refuses the connection is reported at once (a run
    retries those; a check does not), so a wrong base_url shows within seconds.

    \b
    Examples:
      bridge check --offline             config, secrets and ledger only
      bridge check --json | jq '.checks[] | select(.ok | not)'
    """
    if offline and deep:
        fail("--deep probes the vendors; it cannot be combined with --offline")
    pairs = app.pairs()
    checks: list[dict[str, Any]] = []
    warnings: list[str] = []
    codes: set[ExitCode] = set()
    for config in pairs.values():
        pair_checks, pair_warnings, pair_code = _check_pair(app, config, offline, deep)
        if len(pairs) > 1:
            for row in pair_checks:
                row["pair"] = config.pair
        checks += pair_checks
        warnings += [w for w in pair_warnings if w not in warnings]
        codes.add(pair_code)
    # a config problem first (nothing was asked of the vendors), then a vendor's
    code = next((c for c in (ExitCode.USAGE, ExitCode.VENDOR) if c in codes), ExitCode.OK)
    if as_json:
        print_json(
            {
                "ok": code == ExitCode.OK,
                "exit_code": int(code),
                "warnings": warnings,
                "checks": checks,
            }
        )
    else:
        for row in checks:
            _echo_check(row)
        for warning in warnings:
            click.echo(f"warning  {warning}", err=True)
    if code != ExitCode.OK:
        sys.exit(int(code))


def _check_pair(
    app: AppContext, config: Config, offline: bool, deep: bool
) -> tuple[list[dict[str, Any]], list[str], ExitCode]:
    """One pair's checks, its warnings and its exit code."""
    problems = [*check_secrets(config)]
    checks: list[dict[str, Any]] = [
        {"side": "config", "name": "config", "ok": True, "message": str(app.config_path)}
    ]
    warnings = [redact_text(w) for w in config_warnings(config)]
    with app.ledger(create=False, config=config) as ledger:
        ledger_problems = ledger.check()
        problems += [f"{ledger.path or config.ledger_url}: {p}" for p in ledger_problems]
        if not ledger_problems:
            where = f"{ledger.path or 'database'} ({ledger.count_links()} links)"
            checks.append({"side": "ledger", "name": "ledger", "ok": True, "message": where})
    checks += [
        {"side": "config", "name": "problem", "ok": False, "message": redact_text(p)}
        for p in problems
    ]
    code = ExitCode.USAGE if problems else ExitCode.OK
    if not problems and not offline:
        results = _vendor_checks(config, deep=deep)
        checks += results
        if any(not result["ok"] for result in results):
            code = ExitCode.VENDOR
    return checks, warnings, code


def _echo_check(row: dict[str, Any]) -> None:
    """One line per check: `config ok ...`, `problem ...` (stderr), `zendesk FAIL name: ...`;
    with several pairs, each line starts with its pair's name."""
    pair = f"[{row['pair']}] " if "pair" in row else ""
    if row["name"] == "problem":
        click.echo(f"{pair}problem  {row['message']}", err=True)
    elif row["side"] in ("config", "ledger"):
        click.echo(f"{pair}{row['side']:<8} ok   {row['message']}")
    else:
        mark = "ok  " if row["ok"] else "FAIL"
        click.echo(f"{pair}{row['side']:<11} {mark} {row['name']}: {row['message']}")


def _vendor_checks(config: Config, *, deep: bool = False) -> list[dict[str, Any]]:
    """Run each adapter's network checks (and, `deep`, its vendor's read-only probes): one
    row each, side, name, ok and message."""
    try:
        adapters = build_adapters(config)
    except SecretError as exc:
        fail(str(exc))
    rows: list[dict[str, Any]] = []
    for side, adapter in adapters.items():
        results: list[CheckResult] = adapter.check()
        if deep and all(result.ok for result in results):
            results += vendor(side).deep_check(adapter)
        for result in results:
            row = asdict(result)
            row["name"] = result.name.removeprefix(f"{side}.").removeprefix(f"{side} ")
            # vendors echo credentials in some error bodies: every line passes the redactor
            row["message"] = redact_text(result.message)
            rows.append({"side": side, **row})
    return rows
