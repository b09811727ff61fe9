"""The ledger's tables (design.md §2), declared once with SQLModel.

The ledger holds ids, states, times and actor ids: never ticket subjects or content.
States, sides, transitions and causes are stored as the string values of `bridge.core.model`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Index,
    Integer,
    TypeDecorator,
    UniqueConstraint,
    event,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateIndex
from sqlalchemy.sql.compiler import DDLCompiler
from sqlmodel import Field, SQLModel

from bridge.ledger.times import from_micros, to_micros
from bridge.logging import redact_text

__all__ = [
    "Cursor",
    "Event",
    "Lease",
    "Link",
    "Meta",
    "Operation",
    "OperationStatus",
    "PairState",
    "Run",
    "UTCDateTime",
    "set_clock",
    "utcnow",
]


def _wall_clock() -> datetime:
    return datetime.now(UTC)


_clock: Callable[[], datetime] = _wall_clock


def utcnow() -> datetime:
    """The ledger's notion of now: wall-clock UTC, or a simulator's clock (demo, benchmarks)."""
    return _clock()


def set_clock(clock: Callable[[], datetime] | None) -> None:
    """Make every ledger timestamp come from `clock` (None: back to the wall clock)."""
    global _clock
    _clock = clock or _wall_clock


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out; stored as integer microseconds since
    the epoch (`bridge.ledger.times`: no per-row parsing, numeric comparison in SQL)."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> int | None:
        return None if value is None else to_micros(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else from_micros(value)


def _time(**kwargs: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kwargs)


#: a vendor's id (ticket, actor, status): 64 bits (a vendor's ids may use them all); on
#: SQLite every INTEGER already is, and its DDL stays as older ledgers have it
_VENDOR_ID = BigInteger().with_variant(Integer(), "sqlite")


def _vendor_id(**kwargs: Any) -> Any:
    return Field(sa_type=_VENDOR_ID, **kwargs)


class Meta(SQLModel, table=True):
    """Key/value facts about the ledger itself, such as its schema version."""

    key: str = Field(primary_key=True)
    value: str


#: where `partial` keeps an index's condition per backend (`Index.info`)
PARTIAL = "where"
#: a run's outcome until it ends (`Run.outcome`); left so, its process died
RUNNING = "running"


def partial(name: str, column: str, **where: str) -> Index:
    """An index that holds only the rows matching `where[backend]` on the backends named
    (`sqlite=`, `postgresql=`), whole on the others. Kept in `Index.info` and written by
    `_create_index`, not as SQLAlchemy's `postgresql_where`: validating that argument
    imports SQLAlchemy's PostgreSQL dialect (and asyncio) into every command, on every
    backend."""
    return Index(name, column, info={PARTIAL: where})


@compiles(CreateIndex)
def _create_index(create: CreateIndex, compiler: DDLCompiler, **kw: Any) -> str:
    """`CREATE INDEX` as the backend writes it, with the index's condition for this
    backend (`partial`) appended."""
    statement: str = compiler.visit_create_index(create, **kw)  # type: ignore[no-untyped-call]
    where = create.element.info.get(PARTIAL, {}).get(compiler.dialect.name)
    return f"{statement} WHERE {where}" if where else statement


class Link(SQLModel, table=True):
    """One ticket on the first side paired with one on the second, unique both ways (which
    vendor stands on each side is recorded in `meta`, key `sides`)."""

    id: int | None = Field(default=None, primary_key=True)
    first_id: int = _vendor_id(unique=True)
    second_id: int = _vendor_id(unique=True)
    origin: str  # csv | external_id | migration
    created_at: datetime = _time(default_factory=utcnow)


class PairState(SQLModel, table=True):
    """What bridge last saw of each side of a link, and the base both last agreed on.

    The per-side columns come in two sets, `first_*` and `second_*`, in the order of the
    ledger's sides."""

    __tablename__ = "pair_state"
    #: On PostgreSQL each index holds only the few rows its queries look for (schema
    #: v6): an update whose new row is none of them writes no entry in it, where a whole
    #: index took one for every update of every pair (a first sync updates each pair
    #: three times). SQLite keeps them whole: it updates rows in place, and uses a partial
    #: index only where a query repeats its condition.
    __table_args__ = (
        #: partial on SQLite too (schema v7): its planner never took a whole index for
        #: `attention IS NOT NULL`, and read every pair to find the few flagged ones
        partial(
            "ix_pair_state_attention",
            "attention",
            sqlite="attention IS NOT NULL",
            postgresql="attention IS NOT NULL",
        ),
        partial(
            "ix_pair_state_first_purge_due",
            "first_purge_due",
            postgresql="first_purge_due IS NOT NULL",
        ),
        partial(
            "ix_pair_state_pending",
            "pending_decision",
            postgresql="pending_decision",
        ),
        #: on PostgreSQL the soft-deleted only (schema v9): the links never read have their
        #: own index there, below
        partial(
            "ix_pair_state_first_state",
            "first_state",
            postgresql="first_state = 'soft_deleted'",
        ),
        #: links never read on the first side, on PostgreSQL (schema v9), as on the second:
        #: walked in link order, so the scan that finds them clears the entries a first sync
        #: left dead (the planner took a bitmap scan of the state index, which clears none,
        #: and the next idle run read 200,000 dead entries). SQLite updates in place: its
        #: state index above serves, with no entry to remove per first sighting
        partial(
            "ix_pair_state_first_unread",
            "link_id",
            postgresql="first_state IS NULL",
        ).ddl_if(dialect="postgresql"),
        #: links never read on the second side (schema v7): partial on both backends, so
        #: an idle run's look for them reads an empty index instead of every pair, and a
        #: pair leaves it once, when first read (the first side's state has its own index)
        partial(
            "ix_pair_state_second_unread",
            "link_id",
            sqlite="second_state IS NULL",
            postgresql="second_state IS NULL",
        ),
    )

    link_id: int = Field(primary_key=True, foreign_key="link.id")
    base: str | None = None
    base_version: int = 0
    base_at: datetime | None = _time(default=None)
    first_state: str | None = None
    first_vendor_time: datetime | None = _time(default=None)
    first_seen_at: datetime | None = _time(default=None)
    first_cause: str | None = None
    #: the vendor's status id while active, where the side reports one: put back after a
    #: restore (where the vendor's own restore does not)
    first_status_id: int | None = _vendor_id(default=None)
    #: a purge copied to this side waits for the vendor's retention job until this time
    first_purge_due: datetime | None = _time(default=None)
    second_state: str | None = None
    second_vendor_time: datetime | None = _time(default=None)
    second_seen_at: datetime | None = _time(default=None)
    second_cause: str | None = None
    #: when the vanished-ticket sweep last found each side's ticket (None: not yet swept)
    first_checked_at: datetime | None = _time(default=None)
    second_checked_at: datetime | None = _time(default=None)
    #: an observation changed a side's state and no decision has been taken on it yet
    pending_decision: bool = False
    #: conflict | divergence | held_purge | failed | None
    attention: str | None = None
    attention_reason: str | None = None
    attention_since: datetime | None = _time(default=None)
    updated_at: datetime = _time(default_factory=utcnow)
    #: the second side's status id and purge due time, as for the first side (last: where
    #: schema v3 added them to older ledgers, so fresh and upgraded ledgers match)
    second_status_id: int | None = _vendor_id(default=None)
    second_purge_due: datetime | None = _time(default=None)


class Run(SQLModel, table=True):
    """One sync or migration run: the audit's unit of work."""

    #: what every run asks of the table, found without reading it whole (schema v8): a run
    #: a minute is half a million rows a year, and each run looked for runs left
    #: `running` and for a `bridge serve` run by reading them all
    __table_args__ = (
        #: the runs of processes that died: none or one, so the index is all but empty
        partial(
            "ix_run_running",
            "id",
            sqlite=f"outcome = '{RUNNING}'",
            postgresql=f"outcome = '{RUNNING}'",
        ),
        Index("ix_run_kind", "kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str  # sync | migrate
    holder: str
    started_at: datetime = _time(default_factory=utcnow)
    ended_at: datetime | None = _time(default=None)
    #: running | converged | failures | waiting | attention | unavailable | interrupted |
    #: failed | aborted (its process died; the run that found it says what it left)
    outcome: str = RUNNING
    dry_run: bool = False
    counts: str = "{}"  # JSON object of counters
    message: str | None = None
    #: who authorised this run's operator override (`--allow-mass-purge`, a migration's
    #: lifted purge cap): `--operator`, else their login name; None for a scheduled run
    #: (last: where schema v5 added it to older ledgers, so fresh and upgraded ones match)
    operator: str | None = None


class Event(SQLModel, table=True):
    """Append-only audit log: every observation, decision and write (triggers forbid edits).

    Its references to `run` and `link` are enforced on SQLite; on PostgreSQL they are
    checked by `bridge check` instead (`Dialect.unenforce_references`, schema v6)."""

    __table_args__ = (
        Index("ix_event_link", "link_id"),
        Index("ix_event_at", "at"),
        #: the rare kinds a report counts (anomalies, conflicts, an operation's life): on
        #: PostgreSQL without the bulk of the log, each pair's sightings (schema v6)
        partial(
            "ix_event_kind",
            "kind",
            postgresql="kind NOT IN ('first_seen', 'observed')",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _time(default_factory=utcnow)
    run_id: int | None = Field(default=None, foreign_key="run.id")
    link_id: int | None = Field(default=None, foreign_key="link.id")
    kind: str
    side: str | None = None
    ticket_id: int | None = _vendor_id(default=None)
    transition: str | None = None
    from_state: str | None = None
    to_state: str | None = None
    cause: str | None = None
    actor_id: int | None = _vendor_id(default=None)
    vendor_time: datetime | None = _time(default=None)
    operation_id: int | None = None
    detail: str | None = None
    #: the person whose command wrote this event (`conflicts resolve`; the `override` event
    #: of a run started with `--allow-mass-purge`); None for what bridge did on its own
    operator: str | None = None


class OperationStatus:
    PLANNED = "planned"
    SENT = "sent"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    SUPERSEDED = "superseded"
    HELD = "held"
    #: a purge on a side whose vendor purges by retention: soft-deleted, waiting for its job
    PENDING_RETENTION = "pending_retention"

    OPEN = (PLANNED, SENT, HELD, PENDING_RETENTION)


class Operation(SQLModel, table=True):
    """The outbox: a planned vendor write, keyed so that planning it twice is harmless."""

    __table_args__ = (
        UniqueConstraint("key", name="uq_operation_key"),
        Index("ix_operation_status", "status"),
        Index("ix_operation_link", "link_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    #: f"{link_id}:{target}:{transition}:{base_version}": deterministic idempotency key
    key: str
    link_id: int = Field(foreign_key="link.id")
    target: str
    ticket_id: int = _vendor_id()
    transition: str
    #: order within one link's plan (soft_delete before purge)
    step: int = 0
    base_version: int
    cause: str  # the source side's cause, copied into the audit
    #: the observation event on the other side that this operation copies
    source_event_id: int | None = None
    status: str = OperationStatus.PLANNED
    run_id: int | None = Field(default=None, foreign_key="run.id")
    batch: str | None = None
    job_id: str | None = None
    attempts: int = 0
    restore_status_id: int | None = _vendor_id(default=None)
    pending_until: datetime | None = _time(default=None)
    error: str | None = None
    created_at: datetime = _time(default_factory=utcnow)
    sent_at: datetime | None = _time(default=None)
    finished_at: datetime | None = _time(default=None)
    updated_at: datetime = _time(default_factory=utcnow)


class Cursor(SQLModel, table=True):
    """Per side, where the incremental read stopped: advanced only with what was recorded."""

    side: str = Field(primary_key=True)
    value: str
    updated_at: datetime = _time(default_factory=utcnow)


class Lease(SQLModel, table=True):
    """One run at a time: the holder and until when its claim stands."""

    name: str = Field(primary_key=True)
    holder: str
    acquired_at: datetime = _time(default_factory=utcnow)
    expires_at: datetime = _time()


# --- nothing secret is stored --------------------------------------------------------------

#: the free-text columns that may carry what a vendor or an exception said
_FREE_TEXT: dict[type[SQLModel], tuple[str, ...]] = {
    Event: ("detail", "operator"),
    Operation: ("error",),
    Run: ("message", "operator"),
    PairState: ("attention_reason",),
}


def _redact_free_text(_mapper: Any, _connection: Any, target: Any) -> None:
    """Every free-text value passes the one redactor on its way into the ledger: vendors
    echo credentials in some error bodies, and the ledger is kept for years."""
    for name in _FREE_TEXT[type(target)]:
        value = getattr(target, name)
        if isinstance(value, str):
            setattr(target, name, redact_text(value))


for _model in _FREE_TEXT:
    event.listen(_model, "before_insert", _redact_free_text)
    event.listen(_model, "before_update", _redact_free_text)
