"""Parts imported when first used, named as `module:name`: the command line's commands and
the vendors' simulators and deep probes. A scheduled sync loads neither the sandbox, nor
the demo, nor the report (they were a third of its start-up)."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["import_attribute"]


def import_attribute(path: str) -> Any:
    """The object `module:name` names, its module imported now if it was not yet."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)
