"""The ledger's read side for metrics: a few grouped counts, read in one connection.

`bridge.metrics` turns these facts into Prometheus metrics; the SQL stays here, with the
rest of the ledger's. Everything counted is ids, states and times: no ticket content.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import col, select

from bridge.ledger.store import Ledger
from bridge.ledger.tables import Link, Operation, OperationStatus, PairState, Run

__all__ = ["AGE_BUCKETS", "LedgerFacts", "ledger_facts"]

#: ages of open operations, as labels, each with the age it runs up to
AGE_BUCKETS: tuple[tuple[str, timedelta], ...] = (
    ("under_5m", timedelta(minutes=5)),
    ("5m_to_1h", timedelta(hours=1)),
    ("1h_to_1d", timedelta(days=1)),
    ("over_1d", timedelta.max),
)
#: the run counts (`Run.counts`) that carry each side's vendor calls and 429 answers
CALLS_SUFFIX = ".http_calls"
RATE_LIMITED_SUFFIX = ".http_429"


@dataclass(frozen=True, slots=True)
class LedgerFacts:
    """What the metrics report, as the ledger holds it."""

    links: int = 0
    #: (kind, outcome) → runs, dry runs aside
    runs: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: (target, transition) → bridge's writes done (purges pending retention included)
    copies: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: attention kind (conflict, divergence, ...) → links
    attention: Counter[str] = field(default_factory=Counter)
    #: (status, age bucket) → operations still open
    pending: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: side → vendor requests sent by all runs, and of them the answers 429
    calls: Counter[str] = field(default_factory=Counter)
    rate_limited: Counter[str] = field(default_factory=Counter)
    last_success: datetime | None = None


def _bucket(age: timedelta) -> str:
    return next(name for name, upto in AGE_BUCKETS if age < upto)


def ledger_facts(ledger: Ledger, now: datetime, success_outcomes: Collection[str]) -> LedgerFacts:
    """Read the facts the metrics report, at `now` (the age of open operations)."""
    runs: Counter[tuple[str, str]] = Counter()
    copies: Counter[tuple[str, str]] = Counter()
    attention: Counter[str] = Counter()
    pending: Counter[tuple[str, str]] = Counter()
    calls: Counter[str] = Counter()
    rate_limited: Counter[str] = Counter()
    real = col(Run.dry_run).is_(False)
    with ledger.engine.connect() as connection:
        links = connection.execute(select(func.count()).select_from(Link)).scalar_one()
        for kind, outcome, n in connection.execute(
            select(col(Run.kind), col(Run.outcome), func.count())
            .where(real)
            .group_by(Run.kind, Run.outcome)
        ):
            runs[(kind, outcome)] += n
        # only runs that counted calls carry the marker (older ones did not)
        for (counts,) in connection.execute(
            select(col(Run.counts)).where(real).where(col(Run.counts).contains(CALLS_SUFFIX))
        ):
            for key, n in json.loads(counts).items():
                if key.endswith(CALLS_SUFFIX):
                    calls[key.removesuffix(CALLS_SUFFIX)] += n
                elif key.endswith(RATE_LIMITED_SUFFIX):
                    rate_limited[key.removesuffix(RATE_LIMITED_SUFFIX)] += n
        done = (OperationStatus.CONFIRMED, OperationStatus.PENDING_RETENTION)
        for target, transition, n in connection.execute(
            select(col(Operation.target), col(Operation.transition), func.count())
            .where(col(Operation.status).in_(done))
            .group_by(Operation.target, Operation.transition)
        ):
            copies[(target, transition)] += n
        for flag, n in connection.execute(
            select(col(PairState.attention), func.count())
            .where(col(PairState.attention).is_not(None))
            .group_by(PairState.attention)
        ):
            attention[str(flag)] += n
        for status, created in connection.execute(
            select(col(Operation.status), col(Operation.created_at)).where(
                col(Operation.status).in_(OperationStatus.OPEN)
            )
        ):
            pending[(status, _bucket(now - created))] += 1
        last = connection.execute(
            select(func.max(func.coalesce(Run.ended_at, Run.started_at)))
            .where(real)
            .where(col(Run.outcome).in_(list(success_outcomes)))
        ).scalar_one_or_none()
    return LedgerFacts(int(links), runs, copies, attention, pending, calls, rate_limited, last)
