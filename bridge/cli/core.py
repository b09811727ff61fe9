"""`bridge init`, `bridge status`, `bridge check`."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

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
from bridge.core.model import id_column
from bridge.factory import build_adapters
from bridge.ledger import Ledger
from bridge.links import named_ids
from bridge.logging import redact_text
from bridge.secrets import SecretError
from bridge.vendors.registry import SIDES, vendor

__all__ = ["check", "init", "status"]


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
def init(directory: Path, force: bool) -> None:
    """Write DIR/bridge.toml from the commented example and create the ledger beside it.

    \b
    Example:
      bridge init --dir /etc/bridge
      $EDITOR /etc/bridge/bridge.toml
      bridge --config /etc/bridge/bridge.toml check
    """
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / "bridge.toml"
    if config_path.exists() and not force:
        fail(f"{config_path} already exists; use --force to overwrite it")
    config_path.write_text(example_config_text(), encoding="utf-8")
    config = load_config(config_path)
    with Ledger.open(config.ledger_url, sides=SIDES, create=True) as ledger:
        where = ledger.path or config.ledger_url
    click.echo(f"Wrote {config_path}")
    click.echo(f"Created ledger {where}")
    click.echo("Next: edit the [zendesk] and [superoffice] sections, then run `bridge check`.")


def _tickets(row: dict[str, object]) -> str:
    """`superoffice 1 / zendesk 2`: a status row's tickets, side by side."""
    return " / ".join(f"{side} {row[id_column(side)]}" for side in SIDES)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@pass_app
def status(app: AppContext, as_json: bool) -> None:
    """Links, states per side, open conflicts, pending operations and the last runs."""
    config = app.config()
    stuck_after = timedelta(minutes=config.sync.attention_after_minutes)
    with app.ledger() as ledger:
        summary = ledger.status(stuck_after=stuck_after)
    for row in [*summary["needs_attention"], *summary["stuck_operations"]["rows"]]:
        row.update(named_ids(row.pop("tickets")))
    if as_json:
        print_json(summary)
        return
    click.echo(f"Ledger: {summary['ledger']} (schema {summary['schema_version']})")
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
    if not summary["runs"]:
        click.echo("Runs: none yet")
    for run in summary["runs"]:
        flag = " (dry run)" if run["dry_run"] else ""
        click.echo(
            f"  run {run['id']}: {run['kind']}{flag} {run['started_at']} → "
            f"{run['ended_at'] or 'running'}: {run['outcome']}"
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
@pass_app
def check(app: AppContext, offline: bool, deep: bool) -> None:
    """Validate the config, the secrets, the ledger and (unless --offline) vendor access.

    Every problem is printed on one line; the exit code is 0 when all is well,
    2 for configuration or ledger problems, 5 when a vendor check fails. With --deep,
    each assumed behaviour gets a line too: ok (seen), FAIL (contradicted: bridge would
    misread this tenant) or "not exercised" (nothing on the tenant to look at).
    """
    if offline and deep:
        fail("--deep probes the vendors; it cannot be combined with --offline")
    config = app.config()
    problems = [*check_secrets(config)]
    click.echo(f"config   ok   {app.config_path}")
    for warning in config_warnings(config):
        click.echo(f"warning  {redact_text(warning)}", err=True)
    with app.ledger(create=False) as ledger:
        ledger_problems = ledger.check()
        problems += [f"{ledger.path or config.ledger_url}: {p}" for p in ledger_problems]
        if not ledger_problems:
            click.echo(f"ledger   ok   {ledger.path or 'database'} ({ledger.count_links()} links)")
    for problem in problems:
        click.echo(f"problem  {redact_text(problem)}", err=True)
    if problems:
        sys.exit(int(ExitCode.USAGE))
    if offline:
        return
    vendor_failures = _vendor_checks(config, deep=deep)
    if vendor_failures:
        sys.exit(int(ExitCode.VENDOR))


def _vendor_checks(config: Config, *, deep: bool = False) -> int:
    """Run each adapter's network checks (and, `deep`, its vendor's read-only probes), one
    line each; return how many failed."""
    try:
        adapters = build_adapters(config)
    except SecretError as exc:
        fail(str(exc))
    failures = 0
    for side, adapter in adapters.items():
        results = adapter.check()
        if deep and all(result.ok for result in results):
            results += vendor(side).deep_check(adapter)
        for result in results:
            mark = "ok  " if result.ok else "FAIL"
            name = result.name.removeprefix(f"{side}.").removeprefix(f"{side} ")
            # vendors echo credentials in some error bodies: every line passes the redactor
            message = redact_text(result.message)
            click.echo(f"{side:<11} {mark} {name}: {message}")
            failures += not result.ok
    return failures
