"""What bridge imports only when it is used: the one place that says how.

* Parts named as `module:name` are imported when first used (`import_attribute`): the
  command line's commands (`bridge.cli.COMMANDS`), each vendor's adapter, simulator, deep
  probes and webhook parts (`bridge.vendors.registry.Vendor`).
* A dependency only one code path needs is imported inside the function that needs it:
  the ledger's engine when a config names pairs (`bridge.config`), jwt and cryptography
  for SuperOffice's system-user login (`bridge.vendors.superoffice.auth`), prometheus for
  a metrics file or endpoint (`bridge.cli.sync`), rich for progress bars on a terminal
  (`bridge.cli.progress`).
* A library that would load an optional one bridge never uses is imported with that one
  hidden (`hidden_modules`): structlog loads rich for tracebacks bridge renders itself.

A scheduled `sync` so loads neither the sandbox, the demo, the report, nor what a
terminal, a login mode or an option it was not given would need; `--version` and `--help`
load no command, no ledger and no vendor (`tests/test_startup.py` says which modules each
start-up may load).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["hidden_modules", "import_attribute"]


def import_attribute(path: str) -> Any:
    """The object `module:name` names, its module imported now if it was not yet."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@contextmanager
def hidden_modules(*names: str) -> Iterator[None]:
    """Within the block, `import NAME` fails as if NAME were not installed, for each of
    `names` not imported yet (one already imported stays visible: hiding it would not
    spare its cost). For libraries that import an optional package at once, whether or
    not what needs it is ever used."""
    hidden = [name for name in names if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name, "") is None:
                del sys.modules[name]
