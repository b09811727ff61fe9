"""`bridge link import|list|discover`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bridge.cli.context import AppContext, fail, pass_app
from bridge.cli.discover import discover
from bridge.cli.exitcodes import ExitCode
from bridge.cli.progress import terminal_progress
from bridge.core.model import id_column
from bridge.links import LinkFileError, import_link_file

__all__ = ["link"]

_SHOWN_PROBLEMS = 200


@click.group()
def link() -> None:
    """Pair SuperOffice tickets with Zendesk tickets."""


@link.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@pass_app
def import_(app: AppContext, file: Path) -> None:
    """Import links from a CSV file with the header superoffice_id,zendesk_id.

    All or nothing: every row is checked first. Non-integer or non-positive ids, a
    missing column, an id repeated in the file, or an id already linked to a different
    partner: every bad line is named and nothing is written. Rows already linked the same
    way are skipped, so importing the same file twice is harmless.

    \b
    Example:
      printf 'superoffice_id,zendesk_id\\n1001,52001\\n1002,52002\\n' > links.csv
      bridge link import links.csv
    """
    if not file.is_file():
        fail(f"{file}: cannot read the link file: no such file")
    # the first import creates the ledger (where no file exists; never over another file)
    with app.ledger(create=True) as ledger, terminal_progress():
        try:
            report = import_link_file(ledger, file)
        except LinkFileError as exc:
            fail(f"{file}: {exc}")
    if not report.ok:
        click.echo(
            f"Error: {file}: {len(report.problems)} problems; nothing was imported:", err=True
        )
        for problem in report.problems[:_SHOWN_PROBLEMS]:
            click.echo(f"  {file}:{problem}", err=True)
        if len(report.problems) > _SHOWN_PROBLEMS:
            click.echo(f"  … and {len(report.problems) - _SHOWN_PROBLEMS} more", err=True)
        sys.exit(int(ExitCode.USAGE))
    click.echo(
        f"Imported {report.created} new links from {file} "
        f"({report.unchanged} already linked, {report.rows} rows)."
    )


@link.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_app
def list_(app: AppContext, as_json: bool) -> None:
    """List links: SuperOffice id, Zendesk id, how each was made and when."""
    with app.ledger() as ledger:
        first, second = (id_column(side) for side in ledger.sides)
        if as_json:
            # Streamed by hand so that a million links never sit in memory at once.
            click.echo("[", nl=False)
            for index, item in enumerate(ledger.iter_links()):
                separator = "," if index else ""
                click.echo(
                    f'{separator}\n  {{"{first}": {item.first_id}, '
                    f'"{second}": {item.second_id}, "origin": "{item.origin}", '
                    f'"created_at": "{item.created_at.isoformat()}"}}',
                    nl=False,
                )
            click.echo("\n]")
            return
        count = 0
        click.echo(f"{first:>15} {second:>12}  origin       created")
        for item in ledger.iter_links():
            count += 1
            click.echo(
                f"{item.first_id:>15} {item.second_id:>12}  {item.origin:<12} "
                f"{item.created_at.isoformat(timespec='seconds')}"
            )
        click.echo(f"{count} links")


link.add_command(discover)
