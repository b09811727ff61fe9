"""The root of bridge's own errors, and the exit code each stands for.

Every failure bridge knows how to explain is a `BridgeError`: the command line prints its
message on one line (through the redactor) and exits with its code, in one place
(`bridge.cli.BridgeGroup`). Anything else is a bug: a one-line message, the traceback only
with `--debug`, and an exit code of its own (`ExitCode.INTERNAL`).
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["BridgeError", "ExitCode"]


class ExitCode(IntEnum):
    """Exit codes of every bridge command, documented in the README."""

    #: done: for sync and migrate, both sides converged
    OK = 0
    #: some operations failed and will be retried by the next run (or it was interrupted)
    RETRY = 1
    #: bad configuration, bad input or bad usage: nothing was written
    USAGE = 2
    #: another run holds the ledger's lease
    LEASE_HELD = 3
    #: a person must look: conflicts, divergences, held purges, failed or stuck operations
    ATTENTION = 4
    #: a vendor could not be read or refused us: nothing was decided or written
    VENDOR = 5
    #: an unexpected error inside bridge (a bug): the traceback is shown with --debug
    INTERNAL = 6


class BridgeError(Exception):
    """A failure bridge can explain in one line; `exit_code` says what kind."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, *, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
