"""`bridge report`: the audit report a data-protection officer can hand over, and
`bridge report verify`: whether a report is the one bridge wrote."""

from __future__ import annotations

import contextlib
import sys
from datetime import datetime, timedelta
from pathlib import Path

import click

from bridge import __version__
from bridge.cli.context import AppContext, fail
from bridge.cli.exitcodes import ExitCode
from bridge.cli.progress import terminal_progress
from bridge.config import Config
from bridge.ledger import Ledger
from bridge.ledger.tables import utcnow
from bridge.report import (
    FORMATS,
    SEAL_SUFFIX,
    Period,
    PeriodError,
    ReportMeta,
    RowFilter,
    Signer,
    default_filename,
    load_public_key,
    load_signer,
    open_output,
    parse_moment,
    verify_report,
    write_report,
)
from bridge.report.text import CAUSES
from bridge.values import BoundedInt
from bridge.vendors.registry import SIDES, SUPEROFFICE, ZENDESK
from bridge.vendors.zendesk.adapter import RETENTION_PERIOD as ZENDESK_RETENTION

__all__ = ["report"]

_STEPS = ("soft_delete", "restore", "purge")


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


class _Ticket(click.ParamType[tuple[str | None, int]]):
    """`ID` (either side's ticket id) or `SIDE:ID` (that side's)."""

    name = "[SIDE:]ID"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str | None, int]:
        if isinstance(value, tuple):
            return value
        text = str(value).strip()
        side, _, number = text.rpartition(":")
        if side and side not in SIDES:
            self.fail(f"{side!r} is not a side: {' or '.join(SIDES)}", param, ctx)
        if not (number.isascii() and number.isdigit()) or int(number) < 1:
            self.fail(f"{text!r} is not a ticket id (a positive whole number)", param, ctx)
        return (side or None, int(number))


def _retention(config: Config) -> dict[str, timedelta]:
    """Each side's time from a soft delete to the vendor's own erasure, for `--ticket`'s
    due dates: SuperOffice's is the tenant's setting, Zendesk's scrub is fixed."""
    retention_days = int(config.section(SUPEROFFICE).retention_days)
    return {SUPEROFFICE: timedelta(days=retention_days), ZENDESK: ZENDESK_RETENTION}


def _link_of(ledger: Ledger, ticket: tuple[str | None, int]) -> int:
    """The link `--ticket` names; exit 2 when none does, or when the id is ambiguous."""
    side, number = ticket
    with ledger.audit_view() as view:
        found = view.links_of_ticket(number)
    named = [
        (link_id, where)
        for link_id, first, second in found
        for where, ticket_id in zip(SIDES, (first, second), strict=True)
        if ticket_id == number and side in (None, where)
    ]
    if not named:
        place = f"{side} ticket" if side else "ticket"
        fail(f"no linked {place} with id {number} in the ledger")
    if len({link_id for link_id, _ in named}) > 1:
        order = sorted({where for _, where in named}, key=list(SIDES).index)
        choices = " or ".join(f"--ticket {where}:{number}" for where in order)
        fail(f"ticket id {number} is linked on both sides: say which with {choices}")
    return named[0][0]


@click.group(invoke_without_command=True)
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
@click.option(
    "--side",
    "sides",
    multiple=True,
    type=click.Choice(list(SIDES)),
    help="Only transitions on this side (repeat for either).",
)
@click.option(
    "--transition",
    "transitions",
    multiple=True,
    type=click.Choice(_STEPS),
    help="Only transitions that include this step (soft_delete+purge counts as both).",
)
@click.option(
    "--cause",
    "causes",
    multiple=True,
    type=click.Choice(CAUSES),
    help="Only transitions with this cause (repeat for several).",
)
@click.option(
    "--ticket",
    type=_Ticket(),
    help="One ticket's whole story across both systems, by its SuperOffice or Zendesk id "
    "(SIDE:ID when the id is linked on both sides).",
)
@click.pass_context
def report(
    ctx: click.Context,
    since: datetime | None,
    until: datetime | None,
    fmt: str,
    output: Path | None,
    detail_rows: int | None,
    sides: tuple[str, ...],
    transitions: tuple[str, ...],
    causes: tuple[str, ...],
    ticket: tuple[str | None, int] | None,
) -> None:
    """Every deletion, restore and purge on either side in a period: when, by whom, why,
    whether and when it reached the other system, and proof that purges happened.

    Rows are the transitions bridge detected in the period; their outcome (propagation,
    purge verification) is as known now. The summary's open conflicts, divergences, held
    purges and failed operations are as they stood at the end of the period; operator
    actions (conflicts resolve, --allow-mass-purge, migrate) name who did them. Every code
    is explained in the report's legend.

    \b
    --ticket ID tells one ticket's story instead: the record to file for an
    erasure request. Both ids; each transition on each side with its actor,
    time, cause and the read it rests on; when final erasure is due on each
    side (SuperOffice's grace period, Zendesk's 30-day scrub) and whether
    bridge has verified it; the ledger runs it covers.

    \b
    Every report is sealed: HTML and Markdown end with the SHA-256 of their
    content and the ledger runs they cover; a CSV or JSON file gets FILE.seal
    beside it. With [report] signing_key_file in the config the seal is also
    signed (Ed25519). `bridge report verify FILE` checks it.

    \b
    Examples:
      bridge report                                   everything so far, as HTML
      bridge report --since 2026-01-01 --until 2026-03-31 --format csv -o q1.csv
      bridge report --format json -o - | my-siem-shipper
      bridge report --ticket 1001 -o erasure-1001.html      one ticket's story
      bridge report --ticket zendesk:52001 --format md -o -
      bridge report --side zendesk --transition purge --cause user
      bridge report verify erasure-1001.html --public-key report-signing.pub.pem
    """
    if ctx.invoked_subcommand is not None:
        return
    app = ctx.find_object(AppContext)
    assert app is not None  # the main group made it
    if since is not None and until is not None and until <= since:
        fail("--until is before --since: the period would be empty the wrong way round")
    config = app.config()
    key_file = config.report.signing_key_file
    signer: Signer | None = load_signer(key_file) if key_file is not None else None
    with app.ledger() as ledger:
        link_id = _link_of(ledger, ticket) if ticket is not None else None
        with ledger.audit_view() as view:
            bounds = view.bounds()
        now = utcnow()
        since_given, until_given = since is not None, until is not None
        if since is None:
            since = parse_moment((bounds[0] if bounds else now).date().isoformat(), end=False)
        if until is None:
            until = parse_moment(now.date().isoformat(), end=True)
        try:
            period = Period(since, until)
        except PeriodError as exc:
            fail(str(exc))
        meta = ReportMeta(
            period,
            now,
            ledger.path or "database",
            __version__,
            filters=RowFilter(frozenset(sides), frozenset(transitions), frozenset(causes), link_id),
            since_given=since_given,
            until_given=until_given,
            retention=_retention(config),
        )
        if bounds is None:
            click.echo("Note: the ledger has no events yet (run `bridge sync` first).", err=True)
        if output is not None and str(output) == "-":
            with contextlib.suppress(AttributeError, ValueError):
                sys.stdout.reconfigure(encoding="utf-8")  # type: ignore[union-attr]
            with terminal_progress():
                written = write_report(
                    ledger, meta, fmt, sys.stdout, detail_rows=detail_rows, signer=signer
                )
            sys.stdout.flush()
            click.echo(
                f"{written.rows} transitions from {period.first_day} to {period.last_day}", err=True
            )
            if FORMATS[fmt].write_rows is not None:
                click.echo(
                    f"SHA-256 of the output: {written.seal.sha256} (a file output gets its "
                    "seal beside it)",
                    err=True,
                )
            return
        path = output or Path(default_filename(period, fmt))
        seal_path = path.with_name(path.name + SEAL_SUFFIX)
        try:
            with open_output(path) as out, terminal_progress():
                written = write_report(
                    ledger, meta, fmt, out, detail_rows=detail_rows, signer=signer
                )
                if FORMATS[fmt].write_rows is not None:
                    with open_output(seal_path) as beside:
                        beside.write(written.seal.to_json() + "\n")
        except OSError as exc:
            fail(f"cannot write {path}: {exc.strerror or exc}", ExitCode.USAGE)
    click.echo(f"{path}")
    signed = " and signed" if signer is not None else ""
    sealed = (
        f"sealed{signed} (seal in {seal_path.name})"
        if FORMATS[fmt].write_rows
        else (f"sealed{signed}")
    )
    click.echo(
        f"{written.rows} transitions from {period.first_day} to {period.last_day}; {sealed}.",
        err=True,
    )


@report.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--public-key",
    metavar="PEM",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The Ed25519 public key you trust (PEM) to check the report's signature with; the "
    "report must then be signed by it.",
)
def verify(file: Path, public_key: Path | None) -> None:
    """Check that FILE is the report bridge wrote: its content against the SHA-256 in
    its seal (the end of an HTML or Markdown report; FILE.seal beside a CSV or JSON
    one), and, with --public-key, the signature.

    Needs no config and no ledger: a data-protection officer can check a report
    that was mailed to them. The signing key's public half comes from whoever keeps
    it (`openssl pkey -in report-signing.pem -pubout -out report-signing.pub.pem`).

    \b
    Exit codes:
      0  intact (and signed by that key, with --public-key)
      2  FILE or the key cannot be read
      4  changed, not sealed, or the signature is missing or not that key's:
         a person must look

    \b
    Examples:
      bridge report verify bridge-report-2026-01-01-2026-03-31.html
      bridge report verify q1.csv --public-key report-signing.pub.pem
    """
    key = load_public_key(public_key) if public_key is not None else None
    try:
        verdict = verify_report(file, key)
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}")
    for line in verdict.lines:
        click.echo(line)
    if not verdict.ok:
        click.echo(f"{file}: NOT VERIFIED", err=True)
        sys.exit(int(ExitCode.ATTENTION))
    click.echo(f"{file}: verified")
