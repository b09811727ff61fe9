"""`--operator`: who did an operator action, for the audit trail (docs/report.md).

`conflicts resolve`, `sync --allow-mass-purge` and `migrate` record the person who asked for
them: `--operator NAME`, else the login name of the account running bridge. The name lands
in the ledger for years and in every report, so it is checked like any other input.
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["operator_name", "operator_option"]

F = TypeVar("F", bound=Callable[..., Any])

#: letters, digits and the punctuation of login names, e-mail addresses and full names
_NAME = re.compile(r"^[\w][\w .@+'-]{0,79}$")


def operator_name(given: str | None) -> str:
    """`given` (checked), else the login name; "unknown" when neither can be had (a
    container without a passwd entry for its uid)."""
    if given is not None:
        name = given.strip()
        if not _NAME.match(name):
            raise click.BadParameter(
                "a name of 1 to 80 letters, digits, spaces and . _ @ + ' -",
                param_hint="'--operator'",
            )
        return name
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
    return login if _NAME.match(login) else "unknown"


def operator_option(what: str) -> Callable[[F], F]:
    """The `--operator NAME` option, its help saying `what` is recorded."""
    return click.option(
        "--operator",
        metavar="NAME",
        help=f"Who {what}, recorded in the ledger and shown by `bridge report` "
        "(default: your login name).",
    )
