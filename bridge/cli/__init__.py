"""The `bridge` command line: a thin click layer over the core modules."""

from __future__ import annotations

import click

from bridge import __version__
from bridge.cli.context import AppContext
from bridge.cli.core import check, init, status
from bridge.cli.demo import demo
from bridge.cli.links import link
from bridge.cli.migrate import migrate
from bridge.cli.report import report
from bridge.cli.sandbox import sandbox
from bridge.cli.sync import conflicts, sync
from bridge.config import resolve_config_path
from bridge.logging import configure_logging

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="bridge")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=str),
    help="Config file. Default: $BRIDGE_CONFIG, else ./bridge.toml.",
)
@click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "console"]),
    help="Log format (overrides the config). auto: JSON lines unless stderr is a terminal.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Log level (overrides the config).",
)
@click.pass_context
def main(
    ctx: click.Context, config_path: str | None, log_format: str | None, log_level: str | None
) -> None:
    """Keep ticket deletion state consistent between SuperOffice and Zendesk.

    A ticket soft-deleted, restored or purged on one side ends up the same on the other,
    and every step is recorded in a local ledger for audit.

    \b
    Start here:
      bridge demo                      see it work against local simulators
      bridge init --dir ./bridge       write a config and create a ledger
      bridge link import links.csv     pair SuperOffice and Zendesk tickets
      bridge check                     validate config, ledger and vendor access
      bridge sync                      one reconciliation run (for cron/systemd)
      bridge report                    the audit report
    """
    configure_logging(log_format or "auto", log_level or "warning")
    ctx.obj = AppContext(resolve_config_path(config_path), log_format, log_level)


main.add_command(init)
main.add_command(status)
main.add_command(check)
main.add_command(link)
main.add_command(sync)
main.add_command(conflicts)
main.add_command(sandbox)
main.add_command(migrate)
main.add_command(report)
main.add_command(demo)
