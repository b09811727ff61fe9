"""Exit codes of every bridge command, documented in the README (defined in `bridge.errors`)."""

from bridge.errors import ExitCode

__all__ = ["ExitCode"]
