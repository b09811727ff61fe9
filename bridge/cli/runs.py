"""What `bridge sync` and `bridge migrate` share: the lease name, exit codes, signals."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import click

from bridge.cli.context import fail
from bridge.cli.exitcodes import ExitCode
from bridge.config import Config
from bridge.core.contract import Adapter
from bridge.core.model import Side
from bridge.errors import BridgeError
from bridge.logging import redact_text
from bridge.once import LEASE, build_pair_adapters, holding_lease
from bridge.run.runner import RunResult

__all__ = ["LEASE", "OUTCOME_EXIT", "StopFlag", "adapters_or_exit", "holding_lease"]

OUTCOME_EXIT = {
    "converged": ExitCode.OK,
    "dry_run": ExitCode.OK,
    "failures": ExitCode.RETRY,
    "interrupted": ExitCode.RETRY,
    "waiting": ExitCode.RETRY,
    "attention": ExitCode.ATTENTION,
    "unavailable": ExitCode.VENDOR,
}


class StopFlag:
    """Set by SIGTERM/SIGINT: the run finishes its batch, records and leaves."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self) -> bool:
        return self.event.is_set()

    @contextmanager
    def installed(self) -> Iterator[None]:
        def handler(signum: int, _frame: FrameType | None) -> None:
            if self.event.is_set():  # a second signal: stop now
                raise KeyboardInterrupt
            click.echo(
                f"Received {signal.Signals(signum).name}: finishing the batch in flight.",
                err=True,
            )
            self.event.set()

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)


def report_unavailable(result: RunResult) -> None:
    """One `Error:` line per side that could not be read or refused us (exit 5 follows):
    a side that refused a read is said once, as refused (the cause a person fixes)."""
    unread = " nothing was decided or written, and its cursor stayed"
    for side, error in sorted(result.unavailable.items()):
        if side not in result.refused:
            click.echo(f"Error: {side} could not be read: {redact_text(error)};{unread}", err=True)
    for side, error in sorted(result.refused.items()):
        also = f";{unread}" if side in result.unavailable else ""
        click.echo(
            f"Error: {side} refused our credentials or rights: {redact_text(error)}; fix the "
            f"token or the API user's rights (`bridge check` tells which){also}",
            err=True,
        )


def adapters_or_exit(config: Config) -> dict[Side, Adapter]:
    """Both adapters, or exit 2 naming the config key of each secret that cannot be read."""
    try:
        return build_pair_adapters(config)
    except BridgeError as exc:
        fail(str(exc))
