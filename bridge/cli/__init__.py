"""The `bridge` command line: a thin click layer over the core modules."""

from __future__ import annotations

import os
import sys
from typing import Any, NamedTuple, NoReturn

import click

from bridge import __version__
from bridge.cli.context import AppContext
from bridge.collector import tune_collector
from bridge.config import resolve_config_path
from bridge.errors import BridgeError, ExitCode
from bridge.lazy import import_attribute
from bridge.logging import redact_text

__all__ = ["main"]

tune_collector()  # bridge/collector.py: why


class LazyCommand(NamedTuple):
    """A command imported when it is run: where it lives, and the first sentence of its
    help (what `bridge --help` lists, so that listing them imports none;
    `tests/test_startup.py` holds each to its command's own)."""

    path: str
    summary: str


#: each command, imported when it is run, so that a scheduled `sync` does not load the
#: sandbox, the demo and the report first, and `--help` loads none
COMMANDS = {
    "init": LazyCommand(
        "bridge.cli.core:init",
        "Write DIR/bridge.toml from the commented example and create the ledger beside it.",
    ),
    "status": LazyCommand(
        "bridge.cli.core:status",
        "Links, states per side, open conflicts, pending operations, the last runs, and when "
        "the pair last succeeded; with workers (`bridge worker`), each pair's queue: runs due, "
        "running, waiting for a retry, and failed in the last 24 hours.",
    ),
    "check": LazyCommand(
        "bridge.cli.core:check",
        "Validate the config, the secrets, the ledger and (unless --offline) vendor access.",
    ),
    "link": LazyCommand("bridge.cli.links:link", "Pair SuperOffice tickets with Zendesk tickets."),
    "sync": LazyCommand(
        "bridge.cli.sync:sync",
        "One reconciliation run: copy soft deletes, restores and purges across.",
    ),
    "conflicts": LazyCommand(
        "bridge.cli.sync:conflicts",
        "List and settle links that need a person: conflicts and divergences.",
    ),
    "sandbox": LazyCommand(
        "bridge.cli.sandbox:sandbox",
        "Run faithful local simulators of the vendor APIs (real HTTP on 127.0.0.1).",
    ),
    "migrate": LazyCommand(
        "bridge.cli.migrate:migrate",
        "Make every linked ticket's deletion state in the target match the source.",
    ),
    "report": LazyCommand(
        "bridge.cli.report:report",
        "Every deletion, restore and purge on either side in a period: when, by whom, why, "
        "whether and when it reached the other system, and proof that purges happened.",
    ),
    "demo": LazyCommand(
        "bridge.cli.demo:demo", "Run the whole story against local simulators of both vendors."
    ),
    "ledger": LazyCommand(
        "bridge.cli.ledger_cmd:ledger", "The ledger itself: move it to another database."
    ),
    "webhooks": LazyCommand(
        "bridge.cli.webhooks:webhooks",
        "Register, check and remove bridge's webhook on each vendor.",
    ),
    "serve": LazyCommand(
        "bridge.cli.serve:serve",
        "Receive webhooks from both vendors and copy the deletions they name within seconds.",
    ),
    "worker": LazyCommand(
        "bridge.cli.worker:worker",
        "Sync every pair on its schedule, as long as it runs (for a service or a container).",
    ),
}


class BridgeGroup(click.Group):
    """The one place where errors become exit codes: a `BridgeError` is its message on one
    line (redacted) and its code; anything else is a bug, shown as one line and exit 6,
    with the traceback only under `--debug`. Commands are loaded when first named
    (`COMMANDS`), and listed by their summaries."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            command = import_attribute(COMMANDS[cmd_name].path)
            _with_verbosity(command, path=cmd_name)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's list of commands, from the summaries of those not loaded (each shortened
        as click shortens a command's own help)."""
        listed = [(name, self._listed(name)) for name in self.list_commands(ctx)]
        listed = [(name, command) for name, command in listed if not command.hidden]
        if not listed:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in listed)
        with formatter.section("Commands"):
            formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in listed])

    def _listed(self, name: str) -> click.Command:
        loaded = self.commands.get(name)
        return loaded if loaded is not None else click.Command(name, help=COMMANDS[name].summary)

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
_PAIRLESS = frozenset({"sandbox", "demo", "worker"})
#: what --pair does on a command, by the command's path (`status`, `webhooks register`):
#: those that cover every pair without it say so; the others need it among several
_PAIR_HELP_EVERY = "The pair to work on (config [pairs.NAME]). Default: every pair."
_PAIR_HELP = {
    "status": _PAIR_HELP_EVERY,
    "check": _PAIR_HELP_EVERY,
    "serve": _PAIR_HELP_EVERY,
    "webhooks register": _PAIR_HELP_EVERY,
    "webhooks status": _PAIR_HELP_EVERY,
    "webhooks unregister": _PAIR_HELP_EVERY,
    "init": "With --ledger-only: the pair whose ledger to create or upgrade (config "
    "[pairs.NAME]); needed when there are several.",
}
_PAIR_HELP_ONE = "The pair to work on (config [pairs.NAME]); needed when there are several."


def _with_verbosity(command: click.Command, *, pair: bool = True, path: str = "") -> None:
    """Give `command` (and every subcommand) -v and -q, and --pair where it reads a pair;
    `path`: the command's names under the group (`webhooks register`)."""
    pair = pair and command.name not in _PAIRLESS
    runs_itself = not isinstance(command, click.Group) or command.invoke_without_command
    if pair and runs_itself:
        command.params.append(
            click.Option(
                ["--pair"],
                metavar="NAME",
                expose_value=False,
                callback=_set_pair,
                help=_PAIR_HELP.get(path, _PAIR_HELP_ONE),
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
        for name, sub in command.commands.items():
            _with_verbosity(sub, pair=pair, path=f"{path} {name}".strip())


_with_verbosity(main, pair=False)
