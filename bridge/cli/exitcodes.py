"""Exit codes of every bridge command, documented in the README (defined in `bridge.errors`),
and which of them a scheduler treats as "retry later"."""

from bridge.errors import ExitCode

__all__ = ["NEEDS_A_PERSON", "RETRY_LATER", "ExitCode"]

#: the next scheduled run does the work: a scheduler counts these as success
#: (docs/scheduling/: systemd's SuccessExitStatus, bridge-sync-alert)
RETRY_LATER = frozenset({ExitCode.RETRY, ExitCode.LEASE_HELD})
#: a scheduler alerts: configuration, attention, a vendor unavailable or refusing us, a bug
NEEDS_A_PERSON = frozenset(ExitCode) - RETRY_LATER - {ExitCode.OK}
