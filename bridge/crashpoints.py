"""Named points where tests kill the process, to prove that any crash is recoverable.

`BRIDGE_CRASH_AT=before_send:2` makes the second pass through `crash_point("before_send")`
kill the process with SIGKILL, as an OOM killer or a power cut would: no cleanup, no
`finally`. Unset (always, in production), a crash point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

__all__ = ["ENV_VAR", "crash_point"]

ENV_VAR = "BRIDGE_CRASH_AT"
_hits: Counter[str] = Counter()


def crash_point(name: str) -> None:
    spec = os.environ.get(ENV_VAR)
    if not spec:
        return
    target, _, nth = spec.partition(":")
    if target != name:
        return
    _hits[name] += 1
    if _hits[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
