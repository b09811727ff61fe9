"""What pairs that share one vendor account share: its calls a minute and its jobs.

Zendesk's limits are the account's, not an integration's: ten pairs in one config, each
syncing its own SuperOffice tenant into the same Zendesk account, must together stay
under the account's requests a minute, its export's pages a minute and its 30 background
jobs. Each pair runs in its own process (or worker), so the count is kept where all of
them can see it: a small table beside the pairs' ledgers (the namespace `_shared` of the
`[ledger] url`: a schema on PostgreSQL, a file on SQLite; no pair can be named so).

A take is one atomic `UPDATE … WHERE used + n <= limit` on the current minute's row, so no
interleaving of processes can overspend; calls are taken a few at a time (at most
`_CHUNK`, and no more than a twentieth of the limit) to keep the round trips to the
database few, at the price of a few unused calls left in a minute by a run that ends (at a
twentieth of a 200 budget, many short runs of many pairs gave out the whole minute while
about a quarter of it reached Zendesk: bench/workers.py). A minute's calls go first to the
holders that waited for them, in the order they came (a queue beside the counts): without
it the calls of a minute went to whoever asked first when it began, and a pair whose first
sync needs many export pages waited behind pairs whose idle runs came back every second
for one page each. A job holds its slot from
submission until a poll sees it end; a slot whose holder died is freed after an hour
(Zendesk's jobs take minutes). The clock and sleep are injected: the demo and tests run
on a simulator's clock.

A command's run waits for its turn. A worker's run does not wait long (`TurnTaking`): its
thread is one of a few that serve every pair, and while it slept on one account's minute
the pairs of other accounts waited behind it. It raises `AccountBusyError` instead, which
ends the run `waiting`, and its job comes back when the turn does; a worker looks at the
turn before it starts a run (`turn_in`) and starts none whose first calls would wait so.
It gives its place in the queue up: a place kept for a job that then found no free thread
held a call of every minute for nobody until it lapsed (at 50 pairs on 10 accounts, four
places of five kept so, the one pair reading waited behind them). A run reading a stream
midway does wait (`AccountBudget.waiting`), and keeps its place as any waiting holder does.
"""

from __future__ import annotations

import math
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    create_engine,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from bridge.core.contract import AccountBusyError
from bridge.ledger.engine import ledger_dialect, pair_ledger_url

__all__ = ["SHARED_NAMESPACE", "AccountBudget", "Budgets", "TurnTaking"]

#: the namespace beside the pairs' ledgers where shared budgets are kept: not a valid pair
#: name (pairs start with a letter), so it cannot be any pair's ledger
SHARED_NAMESPACE = "_shared"
#: a job slot whose holder never gave it back (killed) is free again after this long
STALE_JOB_SECONDS = 3_600
_MINUTE = 60
#: the most calls one take reserves: what a run that ends may leave unused of a minute
_CHUNK = 5
#: a queued holder looks again at least this often while it waits (seconds), so that
#: its place stays fresh
_LOOK_EVERY = 10.0
#: a queued holder that has not looked for this long (microseconds: three looks missed)
#: was stopped or killed: its place is dropped. Each place ahead keeps a call of the
#: minute for its holder, so a killed run's place held back the account's other runs
#: until then (kills every few seconds left ten export pages a minute to dead places:
#: bench/workers.py with --limits)
_STALE_WAITER = 30_000_000
_MICROS = 1_000_000
#: minutes of counts kept (older rows are pruned as calls are taken): an hour, for a look
_KEPT_MINUTES = 60

_metadata = MetaData()
_calls = Table(
    "budget_minute",
    _metadata,
    Column("account", String(300), primary_key=True),
    Column("kind", String(40), primary_key=True),
    Column("minute", BigInteger, primary_key=True),
    Column("used", Integer, nullable=False),
)
#: who waits for a call of the account, in the order they came (`since`, then `holder`):
#: a minute's calls go to them first, so that a pair whose run needs many pages is not
#: starved by pairs whose quick runs come back for one page each
_waiters = Table(
    "budget_waiter",
    _metadata,
    Column("account", String(300), primary_key=True),
    Column("kind", String(40), primary_key=True),
    Column("holder", String(40), primary_key=True),
    Column("since", BigInteger, nullable=False),  # microseconds of the budget's clock
    Column("seen", BigInteger, nullable=False),  # its last look, refreshed at every look
)
_jobs = Table(
    "budget_job",
    _metadata,
    Column("account", String(300), primary_key=True),
    Column("job_id", String(100), primary_key=True),
    Column("taken_at", BigInteger, nullable=False),
)


#: the `Budgets` this process opened (`Budgets.opened`)
_OPENED: dict[tuple[int, str, object, object], Budgets] = {}
_OPENED_LOCK = threading.Lock()


class Budgets:
    """The shared budgets of the accounts in one config: one database connection pool."""

    def __init__(
        self,
        shared_ledger_url: str,
        *,
        clock: Callable[[], datetime],
        sleep: Callable[[float], None],
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        url = pair_ledger_url(shared_ledger_url, SHARED_NAMESPACE)
        dialect = ledger_dialect(url)
        self.engine: Engine = create_engine(make_url(url), connect_args=dialect.connect_args())
        path = dialect.database_file(self.engine.url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            dialect.create_namespace(cursor, self.engine.url)
            cursor.close()
            raw.commit()
        finally:
            raw.close()
        for attempt in range(3):
            try:
                _metadata.create_all(self.engine, checkfirst=True)
                break
            except DBAPIError:  # another process created them between check and create
                if attempt == 2:
                    raise

    @classmethod
    def opened(
        cls,
        shared_ledger_url: str,
        *,
        clock: Callable[[], datetime],
        sleep: Callable[[float], None],
    ) -> Budgets:
        """The process's `Budgets` for this URL, clock and sleep, opened at its first use:
        a worker's runs (every pair, every few seconds) share one pool, instead of each
        opening its own and checking the tables anew."""
        key = (os.getpid(), shared_ledger_url, clock, sleep)  # a forked child opens its own
        with _OPENED_LOCK:
            budgets = _OPENED.get(key)
            if budgets is None:
                budgets = _OPENED[key] = cls(shared_ledger_url, clock=clock, sleep=sleep)
            return budgets

    def account(
        self,
        account: str,
        *,
        limits: Mapping[str, Callable[[], float]],
        job_limit: int,
        give_back_after: float | None = None,
    ) -> AccountBudget:
        """The budget of `account` (e.g. `zendesk:https://acme.zendesk.com`): per kind of
        call, a limit a minute (asked anew: it may come from the vendor's answers).
        `give_back_after`: `TurnTaking`."""
        return AccountBudget(
            self.engine,
            account,
            dict(limits),
            job_limit,
            self._clock,
            self._sleep,
            give_back_after=give_back_after,
        )

    def close(self) -> None:
        self.engine.dispose()


def _until_next_minute(now: float) -> float:
    """Seconds from `now` to the next minute of the budget's clock, when its calls are
    counted anew: the wait for a turn this minute cannot give (never quite 0)."""
    return max(0.001, (int(now // _MINUTE) + 1) * _MINUTE - now)


@dataclass(frozen=True)
class TurnTaking:
    """The shared budgets as a worker's run sees them: a turn further away than
    `give_back_after` seconds is not waited for (`AccountBusyError`)."""

    budgets: Budgets
    give_back_after: float

    def account(
        self, account: str, *, limits: Mapping[str, Callable[[], float]], job_limit: int
    ) -> AccountBudget:
        return self.budgets.account(
            account, limits=limits, job_limit=job_limit, give_back_after=self.give_back_after
        )


@dataclass
class AccountBudget:
    """One account's shared budget, as one process sees it."""

    engine: Engine
    account: str
    limits: dict[str, Callable[[], float]]
    job_limit: int
    clock: Callable[[], datetime]
    sleep: Callable[[float], None]
    #: the longest wait for a turn `take_call` sleeps; a longer one it leaves to the
    #: caller (`AccountBusyError`), giving its place up (None: any wait is slept)
    give_back_after: float | None = None
    #: calls taken from the shared count and not yet spent, per kind: (minute, left)
    _held: dict[str, tuple[int, int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    #: the threads inside `waiting()`: their calls never give a turn back
    _patient: threading.local = field(default_factory=threading.local)
    #: this budget's name in the account's queue: one per run's adapter
    _holder: str = field(default_factory=lambda: uuid.uuid4().hex)

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """In the block, this thread's `take_call` sleeps for its turn however far: a
        stream read midway would read its last page again after giving its turn back
        (a page's cursor is stored only once the next page is read), so a run that got
        one page a turn would never get on."""
        before = getattr(self._patient, "on", False)
        self._patient.on = True
        try:
            yield
        finally:
            self._patient.on = before

    def take_call(self, kind: str = "calls") -> None:
        """Block until one call of `kind` fits the account's minute, then count it;
        waiting, look again every `_LOOK_EVERY` seconds (the place stays fresh). A wait
        longer than `give_back_after` raises `AccountBusyError` instead, out of the
        queue, unless the thread is inside `waiting()`."""
        while True:
            wait = self.try_take(kind)
            if wait is None:
                return
            patient = getattr(self._patient, "on", False)
            if self.give_back_after is not None and wait > self.give_back_after and not patient:
                self._leave(kind)
                raise AccountBusyError(
                    f"{self.account}: this minute's {kind} calls are taken by the pairs "
                    f"that share the account; the turn comes in {wait:.0f}s",
                    retry_after=wait,
                )
            try:
                self.sleep(min(wait, _LOOK_EVERY))
            except BaseException:
                self._leave(kind)  # stopped while waiting: out of the queue
                raise

    def try_take(self, kind: str = "calls") -> float | None:
        """Count one call of `kind` if the account's minute has one for this holder (None),
        else join or keep a place in the account's queue and say how long to wait."""
        with self._lock:
            now = self.clock().timestamp()
            minute = int(now // _MINUTE)
            held_minute, left = self._held.get(kind, (minute, 0))
            if held_minute == minute and left > 0:
                self._held[kind] = (minute, left - 1)
                return None
            limit = max(1, math.floor(self.limits[kind]()))
            wanted = max(1, min(_CHUNK, limit // 20))
            got = self._take(kind, minute, limit, wanted, int(now * _MICROS))
            if got:
                self._held[kind] = (minute, got - 1)
                return None
            return _until_next_minute(now)

    def turn_in(self, kinds: Iterable[str]) -> float:
        """Seconds until a new holder could take a call of each of `kinds` (0: now), joining
        no queue: a worker looks before it starts a run, and one whose first calls would
        wait past `give_back_after` is not started (no run recorded: docs/workers.md). A
        look, not a promise: the run may still meet a far turn midway."""
        now = self.clock().timestamp()
        minute = int(now // _MINUTE)
        kinds = list(kinds)
        stale = int(now * _MICROS) - _STALE_WAITER
        with self.engine.connect() as connection:
            used: dict[str, int] = dict(
                connection.execute(
                    select(_calls.c.kind, _calls.c.used).where(
                        _calls.c.account == self.account,
                        _calls.c.kind.in_(kinds),
                        _calls.c.minute == minute,
                    )
                ).all()
            )
            queued: dict[str, int] = dict(
                connection.execute(
                    select(_waiters.c.kind, func.count())
                    .where(
                        _waiters.c.account == self.account,
                        _waiters.c.kind.in_(kinds),
                        _waiters.c.seen >= stale,
                    )
                    .group_by(_waiters.c.kind)
                ).all()
            )
        for kind in kinds:
            limit = max(1, math.floor(self.limits[kind]()))
            if limit - used.get(kind, 0) - queued.get(kind, 0) <= 0:
                return _until_next_minute(now)
        return 0.0

    def _take(self, kind: str, minute: int, limit: int, wanted: int, now: int) -> int:
        """Up to `wanted` calls from the shared count of `minute` (0: none for us)."""
        for _ in range(3):
            try:
                with self.engine.begin() as connection:
                    return self._take_in(connection, kind, minute, limit, wanted, now)
            except IntegrityError:  # another process made the same row first: again
                continue
        return 0

    def _take_in(
        self, connection: Connection, kind: str, minute: int, limit: int, wanted: int, now: int
    ) -> int:
        """Calls go to the holders first in the account's queue: this holder takes only
        what the minute has left beyond the share of the live holders queued before it
        (all of them, when it holds no place yet); otherwise it keeps, or takes, a place."""
        key = and_(_calls.c.account == self.account, _calls.c.kind == kind)
        queue = and_(_waiters.c.account == self.account, _waiters.c.kind == kind)
        # a write first: SQLite takes its write lock here, never upgrading a read lock
        connection.execute(delete(_calls).where(key, _calls.c.minute < minute - _KEPT_MINUTES))
        connection.execute(delete(_waiters).where(queue, _waiters.c.seen < now - _STALE_WAITER))
        mine = connection.execute(select(_waiters.c.since).where(self._place(kind))).scalar()
        before = select(func.count()).select_from(_waiters).where(queue)
        if mine is not None:
            before = before.where(
                or_(
                    _waiters.c.since < mine,
                    and_(_waiters.c.since == mine, _waiters.c.holder < self._holder),
                )
            )
        ahead = int(connection.execute(before).scalar_one())
        used = connection.execute(select(_calls.c.used).where(key, _calls.c.minute == minute))
        spent = used.scalar()
        free = limit - (spent or 0) - ahead
        got = 0
        if free > 0 and spent is None:
            got = min(wanted, free)
            connection.execute(
                insert(_calls).values(account=self.account, kind=kind, minute=minute, used=got)
            )
        elif free > 0:
            for want in sorted({min(wanted, free), 1}, reverse=True):
                # conditional: a concurrent take (PostgreSQL) may have spent the rest
                if connection.execute(
                    update(_calls)
                    .where(key, _calls.c.minute == minute, _calls.c.used + want <= limit)
                    .values(used=_calls.c.used + want)
                ).rowcount:
                    got = want
                    break
        mine_row = self._place(kind)
        if got:
            connection.execute(delete(_waiters).where(mine_row))
        elif mine is None:
            connection.execute(
                insert(_waiters).values(
                    account=self.account, kind=kind, holder=self._holder, since=now, seen=now
                )
            )
        else:
            connection.execute(update(_waiters).where(mine_row).values(seen=now))
        return got

    def _leave(self, kind: str) -> None:
        """Give up this holder's place in the queue of `kind` (best effort: a place
        nobody refreshes is dropped after `_STALE_WAITER` anyway)."""
        try:
            with self.engine.begin() as connection:
                connection.execute(delete(_waiters).where(self._place(kind)))
        except DBAPIError:
            pass

    def _place(self, kind: str) -> ColumnElement[bool]:
        """This holder's row in the account's queue of `kind`."""
        return and_(
            _waiters.c.account == self.account,
            _waiters.c.kind == kind,
            _waiters.c.holder == self._holder,
        )

    # -- jobs ----------------------------------------------------------------------------
    def jobs_running(self) -> int:
        """Jobs of this account held by any pair (stale slots not counted)."""
        fresh = int(self.clock().timestamp()) - STALE_JOB_SECONDS
        with self.engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count())
                    .select_from(_jobs)
                    .where(_jobs.c.account == self.account, _jobs.c.taken_at >= fresh)
                ).scalar_one()
            )

    def hold_job(self, job_id: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                insert(_jobs).values(
                    account=self.account, job_id=job_id, taken_at=int(self.clock().timestamp())
                )
            )

    def release_jobs(self, job_ids: list[str]) -> None:
        if not job_ids:
            return
        stale = int(self.clock().timestamp()) - STALE_JOB_SECONDS
        with self.engine.begin() as connection:
            connection.execute(
                delete(_jobs).where(
                    _jobs.c.account == self.account,
                    _jobs.c.job_id.in_(job_ids) | (_jobs.c.taken_at < stale),
                )
            )
