"""`bridge report`: the audit report a data-protection officer can hand over."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click

from bridge import __version__
from bridge.cli.context import AppContext, fail, pass_app
from bridge.cli.exitcodes import ExitCode
from bridge.ledger.tables import utcnow
from bridge.report import (
    FORMATS,
    Period,
    PeriodError,
    ReportMeta,
    default_filename,
    open_output,
    parse_moment,
    write_report,
)
from bridge.values import BoundedInt

__all__ = ["report"]


class _Moment(click.ParamType[datetime]):
    """A day (YYYY-MM-DD) or an ISO date-time, as an aware UTC datetime."""

    name = "DATE"

    def __init__(self, *, end: bool) -> None:
        self.end = end

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_moment(str(value), end=self.end)
        except PeriodError as exc:
            self.fail(str(exc), param, ctx)


@click.command()
@click.option(
    "--since",
    type=_Moment(end=False),
    help="First day (YYYY-MM-DD, UTC) or an ISO date-time. Default: the ledger's first event.",
)
@click.option(
    "--until",
    type=_Moment(end=True),
    help="Last day, included (YYYY-MM-DD, UTC), or an ISO date-time (excluded). Default: today.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(FORMATS)),
    default="html",
    show_default=True,
    help="html: self-contained page; md: for a ticket; csv / json (JSON Lines): every row.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="File to write ('-' for stdout). Default: bridge-report-SINCE-UNTIL.EXT here.",
)
@click.option(
    "--detail-rows",
    type=BoundedInt(0, 10_000_000),
    help="html/md: rows of detail shown inline (default 1000 for html, 200 for md).",
)
@pass_app
def report(
    app: AppContext,
    since: datetime | None,
    until: datetime | None,
    fmt: str,
    output: Path | None,
    detail_rows: int | None,
) -> None:
    """Every deletion, restore and purge on either side in a period: when, by whom, why,
    whether and when it reached the other system, and proof that purges happened.

    Rows are the transitions bridge detected in the period; their outcome (propagation,
    purge verification) is as known now. The summary's open conflicts, divergences, held
    purges and failed operations are as they stood at the end of the period.

    \b
    Examples:
      bridge report                                   everything so far, as HTML
      bridge report --since 2026-01-01 --until 2026-03-31 --format csv -o q1.csv
      bridge report --format json -o - | my-siem-shipper
    """
    if since is not None and until is not None and until <= since:
        fail("--until is before --since: the period would be empty the wrong way round")
    with app.ledger() as ledger:
        with ledger.audit_view() as view:
            bounds = view.bounds()
        now = utcnow()
        if since is None:
            since = parse_moment((bounds[0] if bounds else now).date().isoformat(), end=False)
        if until is None:
            until = parse_moment(now.date().isoformat(), end=True)
        try:
            period = Period(since, until)
        except PeriodError as exc:
            fail(str(exc))
        meta = ReportMeta(period, now, ledger.path or "database", __version__)
        if bounds is None:
            click.echo("Note: the ledger has no events yet (run `bridge sync` first).", err=True)
        if output is not None and str(output) == "-":
            rows = write_report(ledger, meta, fmt, sys.stdout, detail_rows=detail_rows)
            sys.stdout.flush()
            click.echo(f"{rows} transitions from {period.label}", err=True)
            return
        path = output or Path(default_filename(period, fmt))
        try:
            with open_output(path) as out:
                rows = write_report(ledger, meta, fmt, out, detail_rows=detail_rows)
        except OSError as exc:
            fail(f"cannot write {path}: {exc.strerror or exc}", ExitCode.USAGE)
    click.echo(f"{path}")
    click.echo(f"{rows} transitions from {period.first_day} to {period.last_day}.", err=True)
