"""A worker's threads shared out between the vendor accounts its pairs share.

A run on a shared account spends much of its time waiting for the account's turn (its
minute's calls or export pages are spent); a first sync waits so for minutes, on its
thread. Left alone, one account's runs could take every thread of a worker, started
together when their turns came, while the pairs of other accounts waited with nothing to
wait for (issue 18). So each shared account gets its fair share of the threads,
`ceil(threads / (shared accounts + pairs sharing none))`, as long as a pair elsewhere has
a job due: a run
that would go over is not started, and its job comes back shortly (as for a far turn).
When no other pair has a job due the share does not bind: threads are never left idle
for fairness' sake. Counted per worker process: two workers give an account two shares.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from bridge.config import Config

__all__ = ["AccountShares"]


class AccountShares:
    """The runs each shared account has going on this worker's threads."""

    def __init__(self, accounts_of: Mapping[str, frozenset[str]], threads: int) -> None:
        """`accounts_of`: each pair's accounts that other pairs use too."""
        self._accounts = dict(accounts_of)
        # what asks for threads: each shared account, and each pair that shares none
        shared = set().union(*self._accounts.values())
        alone = sum(1 for used in self._accounts.values() if not used)
        #: the runs one shared account may have going while a pair elsewhere waits
        self.share = math.ceil(threads / max(1, len(shared) + alone))
        self._running: Counter[str] = Counter()
        self._lock = threading.Lock()

    @classmethod
    def of_pairs(cls, configs: Mapping[str, Config], threads: int) -> AccountShares:
        return cls({pair: config.shared_accounts() for pair, config in configs.items()}, threads)

    def others(self, accounts: frozenset[str]) -> list[str]:
        """The pairs that use none of `accounts`."""
        return [pair for pair, used in self._accounts.items() if not used & accounts]

    @contextmanager
    def running(self, pair: str, *, others_due: Callable[[list[str]], bool]) -> Iterator[bool]:
        """Count a run of `pair` on its shared accounts while the block runs; False (and
        nothing counted) when one of them has its share going already and `others_due`
        says a pair using none of those has a job due (asked only then)."""
        accounts = self._accounts.get(pair, frozenset())
        with self._lock:
            full = frozenset(a for a in accounts if self._running[a] >= self.share)
            if not full:
                self._running.update(accounts)
        if full:
            if others_due(self.others(full)):
                yield False
                return
            with self._lock:
                self._running.update(accounts)
        try:
            yield True
        finally:
            with self._lock:
                self._running.subtract(accounts)
