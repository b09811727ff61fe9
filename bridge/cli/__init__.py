"""The `bridge` command line: a thin click layer over the core modules."""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

import click

from bridge import __version__
from bridge.cli.context import AppContext
from bridge.config import resolve_config_path
from bridge.errors import BridgeError, ExitCode
from bridge.lazy import import_attribute
from bridge.logging import redact_text

__all__ = ["main"]


#: each command and the `module:name` it lives in: imported when it is run (or listed),
#: so that a scheduled `sync` does not load the sandbox, the demo and the report first
COMMANDS = {
    "init": "bridge.cli.core:init",
    "status": "bridge.cli.core:status",
    "check": "bridge.cli.core:check",
    "link": "bridge.cli.links:link",
    "sync": "bridge.cli.sync:sync",
    "conflicts": "bridge.cli.sync:conflicts",
    "sandbox": "bridge.cli.sandbox:sandbox",
    "migrate": "bridge.cli.migrate:migrate",
    "report": "bridge.cli.report:report",
    "demo": "bridge.cli.demo:demo",
    "ledger": "bridge.cli.ledger_cmd:ledger",
    "webhooks": "bridge.cli.webhooks:webhooks",
    "serve": "bridge.cli.serve:serve",
    "worker": "bridge.cli.worker:worker",
}


class BridgeGroup(click.Group):
    """The one place where errors become exit codes: a `BridgeError` is its message on one
    line (redacted) and its code; anything else is a bug, shown as one line and exit 6,
    with the traceback only under `--debug`. Commands are loaded when first named
    (`COMMANDS`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            command = import_attribute(COMMANDS[cmd_name])
            _with_verbosity(command)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _reader_went_away()
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BridgeError as exc:
            click.echo(f"Error: {redact_text(str(exc))}", err=True)
            sys.exit(int(exc.exit_code))
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            click.echo(
                f"Error: internal error ({type(exc).__name__}: {redact_text(str(exc))[:300]}); "
                "this is a bug in bridge: run again with --debug for the traceback",
                err=True,
            )
            sys.exit(int(ExitCode.INTERNAL))


def _reader_went_away() -> NoReturn:
    """`bridge report -o - | head`: the reader closed the pipe. End quietly, as `cat`
    would, with the shell's code for a SIGPIPE death (141); stdout goes to /dev/null so
    that the interpreter's last flush does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(EXIT_BROKEN_PIPE)


#: 128 + SIGPIPE: what a shell shows for a command whose reader went away
EXIT_BROKEN_PIPE = 141


@click.group(
    cls=BridgeGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "--version", prog_name="bridge")
@click.option(
    "--debug",
    is_flag=True,
    help="Show the full traceback of an unexpected error (exit 6) instead of one line.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=str),
    help="Config file. Default: $BRIDGE_CONFIG, else ./bridge.toml.",
)
@click.option(
    "--pair",
    envvar="BRIDGE_PAIR",
    metavar="NAME",
    help="The pair of accounts to work on, when the config declares several ([pairs.NAME]); "
    "also taken after the command. Default: $BRIDGE_PAIR, else the config's only pair.",
)
@click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "console"]),
    help="Log format: over $BRIDGE_LOG_FORMAT, over the config's logging.format. "
    "auto: JSON lines unless stderr is a terminal.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Log level: over $BRIDGE_LOG_LEVEL, over the config's logging.level "
    "(default warning). -v/-q on any command say the same in short.",
)
@click.pass_context
def main(
    ctx: click.Context,
    debug: bool,
    config_path: str | None,
    pair: str | None,
    log_format: str | None,
    log_level: str | None,
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
    level = log_level or ctx.meta.get(_META_LEVEL)
    ctx.obj = app = AppContext(resolve_config_path(config_path), log_format, level, debug, pair)
    app.apply_logging()


_VERBOSITY = {-1: "error", 1: "info", 2: "debug"}
_META_LEVEL = "bridge.log_level"


def _set_verbosity(ctx: click.Context, param: click.Parameter, value: int) -> None:
    """-v (info), -vv (debug), -q (errors only): the same as --log-level, on any command."""
    if not value:
        return
    step = -1 if param.name == "quiet" else min(value, 2)
    app = ctx.find_object(AppContext)
    if app is None:  # on `bridge -v ...`: before the group has made its context
        ctx.meta[_META_LEVEL] = _VERBOSITY[step]
        return
    app.log_level = _VERBOSITY[step]
    app.apply_logging()


def _set_pair(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        app = ctx.find_object(AppContext)
        assert app is not None  # the group has made it
        app.pair = value


#: commands that read no pair's config (the group's --pair is accepted and ignored), or
#: take several (`worker --pair A --pair B`: the group's names one)
_PAIRLESS = frozenset({"init", "sandbox", "demo", "worker"})


def _with_verbosity(command: click.Command, *, pair: bool = True) -> None:
    """Give `command` (and every subcommand) -v and -q, and --pair where it reads a pair."""
    pair = pair and command.name not in _PAIRLESS
    runs_itself = not isinstance(command, click.Group) or command.invoke_without_command
    if pair and runs_itself:
        command.params.append(
            click.Option(
                ["--pair"],
                metavar="NAME",
                expose_value=False,
                callback=_set_pair,
                help="The pair to work on (config [pairs.NAME]); needed when there are several.",
            )
        )
    command.params += [
        click.Option(
            ["-v", "--verbose"],
            count=True,
            expose_value=False,
            callback=_set_verbosity,
            help="More log: -v info (one line per batch), -vv debug (per link).",
        ),
        click.Option(
            ["-q", "--quiet"],
            count=True,
            expose_value=False,
            callback=_set_verbosity,
            help="Only errors in the log.",
        ),
    ]
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _with_verbosity(sub, pair=pair)


_with_verbosity(main, pair=False)
