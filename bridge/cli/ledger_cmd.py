"""`bridge ledger copy`: the ledger moved to another database, verified."""

from __future__ import annotations

import click
from sqlalchemy.engine import make_url

from bridge.cli.context import AppContext, fail, pass_app
from bridge.cli.runs import holding_lease
from bridge.config import url_secret
from bridge.ledger import LedgerURLError, default_holder
from bridge.ledger.copy import copy_ledger

__all__ = ["ledger"]


@click.group()
def ledger() -> None:
    """The ledger itself: move it to another database."""


@ledger.command("copy")
@click.option(
    "--to",
    "target",
    required=True,
    metavar="URL",
    help="The database to copy into (SQLAlchemy URL, no password in it): empty, or "
    "missing for a SQLite file.",
)
@pass_app
def copy(app: AppContext, target: str) -> None:
    """Copy the whole ledger ([ledger] url) into another database, and verify it.

    With several pairs, one pair at a time (--pair NAME): its ledger goes where that
    pair's will be once [ledger] url is URL (its schema, or its file beside URL's).

    For moving up from the embedded SQLite file to PostgreSQL, without losing the audit
    trail (and back down). Every table is copied in one transaction on each side while
    this command holds the run lease (a sync started meanwhile exits 3), then read back
    from the target: the copy is committed only if every table's row count and checksum
    match the source's. A target that already holds any link, run or event is refused.
    The source is left as it was: point [ledger] url at the target afterwards.

    The password never goes in the URL: the PostgreSQL driver reads PGPASSWORD,
    ~/.pgpass, or a file named by `?passfile=` in the URL.

    \b
    Examples:
      # SQLite -> PostgreSQL (the database exists, empty; bridge makes its tables)
      PGPASSWORD=... bridge ledger copy --to postgresql+psycopg://bridge@db.example/bridge
      # PostgreSQL -> a new SQLite file
      bridge ledger copy --to sqlite:////var/lib/bridge/bridge.db
    """
    try:
        parsed = make_url(target)
    except Exception:  # SQLAlchemy's ArgumentError: the URL itself is not shown back
        fail("--to: not a database URL (e.g. postgresql+psycopg://bridge@db/bridge)")
    if secret := url_secret(parsed):
        fail(
            f"--to: must not contain a password ({secret}); use PGPASSWORD, ~/.pgpass or ?passfile="
        )
    config = app.config()
    try:
        pair_target = config.ledger_url_under(target)
    except LedgerURLError as exc:
        fail(f"--to: {exc}")
    with (
        app.ledger() as source,
        holding_lease(source, config, default_holder()),
    ):
        tables = copy_ledger(source, pair_target)
    shown = parsed.render_as_string(hide_password=True)
    if len(config.pair_names) > 1:
        where = make_url(pair_target).render_as_string(hide_password=True)
        click.echo(f"Copied pair {config.pair}'s ledger to {where}, verified table by table:")
    else:
        click.echo(f"Copied the ledger to {shown}, verified table by table:")
    for table in tables:
        click.echo(f"  {table.table:<11} {table.rows:>10} rows  sha256 {table.checksum[:16]}")
    others = [name for name in config.pair_names if name != config.pair]
    if others:
        click.echo(f"Copy the other pairs too (--pair {', --pair '.join(others)}), then")
    click.echo(f"set [ledger] url = {shown!r} in {app.config_path}.")
