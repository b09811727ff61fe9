"""`bridge link discover`: links from Zendesk external ids (added to the `link` group)."""

from __future__ import annotations

import sys

import click

from bridge.cli.context import AppContext, fail, pass_app, print_json
from bridge.cli.exitcodes import ExitCode
from bridge.core.contract import AdapterError
from bridge.factory import build_adapters
from bridge.links_discover import DiscoverReport, discover_links
from bridge.secrets import SecretError
from bridge.vendors.registry import SUPEROFFICE, ZENDESK

__all__ = ["discover"]

_SHOWN = 200


@click.command("discover")
@click.option("--dry-run", is_flag=True, help="Report what would be linked; link nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_app
def discover(app: AppContext, dry_run: bool, as_json: bool) -> None:
    """Link tickets whose Zendesk external_id names a SuperOffice ticket.

    Reads the whole Zendesk incremental export, keeps tickets whose external_id fits
    links.external_id_pattern (e.g. "superoffice-{id}"), checks that each SuperOffice
    ticket exists, and links the pairs. Ambiguous ids (two Zendesk tickets naming the
    same SuperOffice ticket, or a clash with an existing link) and dangling ones (no such
    SuperOffice ticket) are reported and never linked. Safe to run again.

    \b
    Exit codes: 0 done, 1 some SuperOffice ids could not be checked (run again),
    2 configuration error, 4 ambiguous or dangling ids to look at, 5 a vendor failed.

    \b
    Examples:
      bridge link discover --dry-run     see what would be linked
      bridge link discover               link them
    """
    config = app.config()
    try:
        adapters = build_adapters(config)
    except SecretError as exc:
        fail(str(exc))
    with app.ledger() as ledger:
        try:
            report = discover_links(
                ledger,
                adapters[ZENDESK],
                adapters[SUPEROFFICE],
                config.links,
                dry_run=dry_run,
            )
        except AdapterError as exc:
            fail(f"nothing was linked: {exc}", ExitCode.VENDOR)
    if as_json:
        print_json(_as_dict(report))
    else:
        _print(report)
    if report.needs_attention:
        sys.exit(int(ExitCode.ATTENTION))
    if report.unresolved:
        sys.exit(int(ExitCode.RETRY))


def _as_dict(report: DiscoverReport) -> dict[str, object]:
    return {
        "pattern": report.pattern,
        "dry_run": report.dry_run,
        "scanned": report.scanned,
        "matched": report.matched,
        "linked": [{"superoffice_id": s, "zendesk_id": z} for s, z in report.linked],
        "already_linked": report.already_linked,
        "ambiguous": [
            {
                "superoffice_id": a.superoffice_id,
                "zendesk_ids": list(a.zendesk_ids),
                "reason": a.reason,
            }
            for a in report.ambiguous
        ],
        "dangling": [
            {"zendesk_id": d.zendesk_id, "superoffice_id": d.superoffice_id}
            for d in report.dangling
        ],
        "unresolved": [{"zendesk_id": z, "superoffice_id": s} for z, s in report.unresolved],
    }


def _print(report: DiscoverReport) -> None:
    click.echo(
        f"Read {report.scanned} Zendesk tickets; {report.matched} have an external_id "
        f'matching "{report.pattern}".'
    )
    verb = "Would link" if report.dry_run else "Linked"
    click.echo(f"{verb} {len(report.linked)} new pairs ({report.already_linked} already linked).")
    if report.dry_run:
        for superoffice_id, zendesk_id in report.linked[:_SHOWN]:
            click.echo(f"  superoffice {superoffice_id} ↔ zendesk {zendesk_id}")
        _more(len(report.linked))
    if report.ambiguous:
        click.echo(f"Ambiguous, not linked ({len(report.ambiguous)}):")
        for item in report.ambiguous[:_SHOWN]:
            click.echo(f"  {item.reason}")
        _more(len(report.ambiguous))
    if report.dangling:
        click.echo(f"Dangling, not linked ({len(report.dangling)}): no such SuperOffice ticket")
        for dangling in report.dangling[:_SHOWN]:
            click.echo(f"  zendesk {dangling.zendesk_id} → superoffice {dangling.superoffice_id}")
        _more(len(report.dangling))
    if report.unresolved:
        click.echo(
            f"Not checked this time, not linked ({len(report.unresolved)}): "
            "SuperOffice did not answer for these ids; run again."
        )


def _more(count: int) -> None:
    if count > _SHOWN:
        click.echo(f"  … and {count - _SHOWN} more")
