"""What every command shares: the chosen config file, loaded lazily, and the ledger."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from bridge.cli.exitcodes import ExitCode
from bridge.config import (
    Config,
    ConfigError,
    PairChoiceError,
    apply_ledger_password,
    load_config,
    load_pairs,
)
from bridge.logging import choose_logging, configure_logging, redact_text
from bridge.secrets import SecretError
from bridge.vendors.registry import SIDES

if TYPE_CHECKING:
    from bridge.ledger import Ledger

__all__ = ["AppContext", "fail", "pass_app", "print_json"]

T = TypeVar("T")


def fail(message: str, code: ExitCode = ExitCode.USAGE) -> NoReturn:
    """Print a one-line error to stderr and exit with `code`."""
    click.echo(f"Error: {redact_text(message)}", err=True)
    sys.exit(int(code))


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


@dataclass
class AppContext:
    config_path: Path
    log_format: str | None = None
    log_level: str | None = None
    debug: bool = False
    #: the pair named by --pair (or BRIDGE_PAIR); None: the config's only pair
    pair: str | None = None
    _config: Config | None = field(default=None, repr=False)

    def config(self) -> Config:
        """The validated config of the chosen pair, or exit 2 with every
        `file:key: problem` line."""
        if self._config is None:
            self._config = self._loaded(lambda: load_config(self.config_path, self.pair))
            self.apply_logging()
            _give_ledger_password(self._config)
        return self._config

    def pairs(self) -> dict[str, Config]:
        """The chosen pair's config, or every pair's when --pair is not given (a command
        that covers them all: `status`, `worker`); exit 2 as `config` does."""
        if self.pair is not None:
            config = self.config()
            return {config.pair: config}
        pairs = self._loaded(lambda: load_pairs(self.config_path))
        if self._config is None:
            self._config = next(iter(pairs.values()))
            self.apply_logging()
            _give_ledger_password(self._config)
        return pairs

    def _loaded(self, load: Callable[[], T]) -> T:
        if not self.config_path.exists():
            fail(
                f"no config file at {self.config_path} (create one with `bridge init`, "
                "or choose one with --config or BRIDGE_CONFIG)"
            )
        try:
            return load()
        except PairChoiceError as exc:
            fail(str(exc))
        except ConfigError as exc:
            click.echo("Error: the configuration is not valid:", err=True)
            for problem in exc.problems:
                click.echo(f"  {problem}", err=True)
            sys.exit(int(ExitCode.USAGE))

    def apply_logging(self) -> None:
        """Configure logging from the options, then `BRIDGE_LOG_FORMAT`/`BRIDGE_LOG_LEVEL`,
        then the config file once it is loaded (exit 2 for a bad environment value)."""
        logging_config = self._config.logging if self._config is not None else None
        try:
            fmt, level = choose_logging(
                self.log_format,
                self.log_level,
                logging_config.format if logging_config else None,
                logging_config.level if logging_config else None,
                os.environ,
            )
        except ValueError as exc:
            fail(str(exc))
        configure_logging(fmt, level)

    def ledger(self, *, create: bool = False, config: Config | None = None) -> Ledger:
        """The ledger of the chosen pair (or of `config`, one of `pairs()`); exits 2 with a
        clear message when it cannot open. The ledger's modules (SQLAlchemy, SQLModel) are
        imported here, by the commands that open one."""
        from bridge.ledger import Ledger, LedgerURLError, SchemaError
        from bridge.ledger.files import LedgerFileError

        config = config or self.config()
        try:
            return Ledger.open(config.ledger_url, sides=SIDES, create=create)
        except LedgerFileError as exc:
            fail(_for_pair(config, str(exc)))
        except (LedgerURLError, SchemaError) as exc:
            fail(_for_pair(config, f"{self.config_path}:ledger.url: {exc}"))
        except Exception as exc:  # a corrupt file, a locked database, a bad driver
            fail(
                _for_pair(
                    config,
                    f"{self.config_path}:ledger.url: cannot open the ledger ({type(exc).__name__})",
                )
            )


def _give_ledger_password(config: Config) -> None:
    """`[ledger] password_file`/`password_env` to libpq (`apply_ledger_password`), or exit
    2 naming where it could not be read (every pair shares the one ledger database)."""
    try:
        apply_ledger_password(config)
    except SecretError as exc:
        fail(f"{config.path}:ledger: {exc}")


#: the commands a ledger's messages name to create one, which need --pair among several
_MAKERS = ("`bridge init --ledger-only`", "`bridge link import`")


def _for_pair(config: Config, message: str) -> str:
    """`message` about a pair's ledger, where the config declares several: which pair's,
    and the commands it names to create one with `--pair` (without it they refuse)."""
    if len(config.pair_names) < 2:
        return message
    for maker in _MAKERS:
        message = message.replace(maker, f"{maker[:-1]} --pair {config.pair}`")
    return f"pair {config.pair}: {message}"


pass_app = click.make_pass_decorator(AppContext)
