"""Exit codes of every bridge command, documented in the README."""

from enum import IntEnum

__all__ = ["ExitCode"]


class ExitCode(IntEnum):
    #: done: for sync and migrate, both sides converged
    OK = 0
    #: converged, but some operations failed and will be retried by the next run
    RETRY = 1
    #: bad configuration, bad input or bad usage: nothing was written
    USAGE = 2
    #: another run holds the ledger's lease
    LEASE_HELD = 3
    #: a person must look: conflicts, divergences or held purges are open
    ATTENTION = 4
    #: a vendor could not be reached or refused us (bridge check, migrate pre-flight)
    VENDOR = 5
