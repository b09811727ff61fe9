"""`bridge demo`: the whole story against the simulators, in one command and under a minute.

Both simulators run in-process on free loopback ports, on one frozen simulated clock that
the runs advance when they wait (jobs, Retry-After, throttles), so rate limits stay on and
cost no real time. A team moving from SuperOffice to Zendesk: a history of deletions,
restores and retention purges in SuperOffice, a migration, then rounds of agent activity on
both sides with scheduled syncs, the clock moving past both retention windows (SuperOffice
14 days, Zendesk 30 days). The config and ledger stay in the chosen folder, so `status` and
`report` show the demo's history afterwards.
"""

from __future__ import annotations

import csv
import random
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bridge.config import Config, load_config
from bridge.core.contract import Adapter
from bridge.core.model import Side, Transition
from bridge.factory import build_adapters, policy_from_config
from bridge.ledger import Ledger
from bridge.ledger.tables import OperationStatus, set_clock
from bridge.links import import_link_file
from bridge.run.migrate import MigrationOptions, migration_run
from bridge.run.runner import RunResult, SyncRun
from bridge.run.state import RunOptions
from bridge.sandbox_pair import Sandbox
from bridge.vendors.registry import SIDES, SUPEROFFICE, ZENDESK

__all__ = [
    "DEFAULT_SEED",
    "DEFAULT_TICKETS",
    "Crossing",
    "DemoOptions",
    "DemoResult",
    "RoundSummary",
    "run_demo",
]

DEFAULT_TICKETS = 3000
DEFAULT_SEED = 7

#: the demo's simulated "today" at the migration (fixed: the demo is deterministic)
MIGRATION_DAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOLDER = "bridge-demo"
#: agents acting in the simulators' UIs (ids only: the ledger keeps no names)
SO_AGENT = 7
ZD_AGENT = (4207, "Agent Ann")


@dataclass(frozen=True, slots=True)
class DemoOptions:
    tickets: int = DEFAULT_TICKETS
    seed: int = DEFAULT_SEED
    #: end with the webhook step: `bridge serve` in-process, a deletion crossing in seconds
    webhooks: bool = False


@dataclass(frozen=True, slots=True)
class Crossing:
    """One deletion carried by a webhook: where it was made, where it arrived, how long
    it took (real seconds, from the agent's click to the other side's state)."""

    source: Side
    source_ticket: int
    target: Side
    target_ticket: int
    seconds: float


@dataclass(frozen=True, slots=True)
class RoundSummary:
    """One run as the summary shows it; counts are this run's unless said otherwise."""

    name: str
    day: str
    activity: str
    outcome: str
    changes_seen: int
    copied: int
    confirmed: int
    conflicts_open: int
    purges_pending: int  # SuperOffice purges waiting for retention, after the run
    purges_verified: int  # purges confirmed by re-reading during the run
    run_id: int | None


@dataclass
class DemoResult:
    folder: Path
    config_path: Path
    rounds: list[RoundSummary] = field(default_factory=list)
    status: dict[str, object] = field(default_factory=dict)
    report_path: Path | None = None
    #: per side, the linked tickets' states as the simulators hold them at the end
    vendor_states: dict[str, dict[str, int]] = field(default_factory=dict)
    crossings: list[Crossing] = field(default_factory=list)
    seconds: float = 0.0


class _Pools:
    """Disjoint groups of link indexes, drawn once from a seeded shuffle."""

    def __init__(self, count: int, seed: int) -> None:
        self._order = list(range(count))
        random.Random(seed).shuffle(self._order)
        self._next = 0
        self.count = count

    def take(self, fraction: float, *, least: int = 1) -> list[int]:
        size = max(least, round(self.count * fraction))
        chunk = self._order[self._next : self._next + size]
        self._next += len(chunk)
        return chunk


class _Story:
    """The sandbox, the ledger and the links; the acts of the story are its methods."""

    def __init__(
        self, sandbox: Sandbox, config: Config, ledger: Ledger, pairs: list[tuple[int, int]]
    ):
        self.sandbox = sandbox
        self.config = config
        self.ledger = ledger
        self.pairs = pairs
        self.clock = sandbox.clock

    def so(self, indexes: Sequence[int]) -> list[int]:
        return [self.pairs[i][0] for i in indexes]

    def zd(self, indexes: Sequence[int]) -> list[int]:
        return [self.pairs[i][1] for i in indexes]

    def adapters(self) -> dict[Side, Adapter]:
        return build_adapters(
            self.config,
            sleep=self.clock.sleep,
            clock=self.clock.now,
            monotonic=self.clock.timestamp,
        )

    def migrate(self) -> RunResult:
        run = migration_run(
            self.ledger,
            self.adapters(),
            MigrationOptions(SUPEROFFICE, ZENDESK, include_purges=True, restore=True),
            holder=HOLDER,
            now=self.clock.now,
            sleep=self.clock.sleep,
        )
        return run.execute()

    def sync(self) -> RunResult:
        options = RunOptions(
            policy=policy_from_config(self.config),
            max_purges_per_run=self.config.sync.max_purges_per_run,
        )
        run = SyncRun(
            self.ledger,
            self.adapters(),
            options,
            holder=HOLDER,
            now=self.clock.now,
            sleep=self.clock.sleep,
        )
        return run.execute()

    def verified_purges(self) -> int:
        return sum(
            1
            for op in self.ledger.operations([OperationStatus.CONFIRMED])
            if op.transition is Transition.PURGE
        )

    def summarise(self, name: str, activity: str, run: Callable[[], RunResult]) -> RoundSummary:
        verified_before = self.verified_purges()
        result = run()
        counts = result.counts
        status = self.ledger.status()
        operations: dict[str, int] = status["operations"]
        return RoundSummary(
            name=name,
            day=self.clock.now().date().isoformat(),
            activity=activity,
            outcome=result.outcome,
            changes_seen=counts["superoffice.changed"] + counts["zendesk.changed"],
            copied=sum(n for key, n in counts.items() if key.endswith(".sent")),
            confirmed=counts["confirmed"],
            conflicts_open=int(status["attention"].get("conflict", 0)),
            purges_pending=operations.get(OperationStatus.PENDING_RETENTION, 0),
            purges_verified=self.verified_purges() - verified_before,
            run_id=result.run_id,
        )


def _write_links(path: Path, pairs: Sequence[tuple[int, int]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["superoffice_id", "zendesk_id"])
        writer.writerows(pairs)


@contextmanager
def _simulated_world() -> Iterator[Sandbox]:
    """Both simulators on a frozen clock; the ledger stamps its rows with that clock."""
    sandbox = Sandbox()
    sandbox.clock.set(MIGRATION_DAY - 45 * DAY)
    sandbox.clock.freeze()
    set_clock(sandbox.clock.now)
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()
        set_clock(None)


def run_demo(
    folder: Path, options: DemoOptions, *, echo: Callable[[str], None] = print
) -> DemoResult:
    """Play the story, leaving `folder/bridge.toml` and its ledger behind."""
    started = time.perf_counter()
    with _simulated_world() as sandbox:
        config_path = sandbox.write_config(folder)
        config = load_config(config_path)
        result = DemoResult(folder, config_path)
        with Ledger.open(config.ledger_url, sides=SIDES) as ledger:
            pairs = _seed(sandbox, options.tickets, folder, ledger, echo)
            story = _Story(sandbox, config, ledger, pairs)
            pools = _Pools(len(pairs), options.seed)
            for name, activity, act in _acts(story, pools):
                summary = story.summarise(name, activity, act)
                result.rounds.append(summary)
                echo(_round_line(summary))
            if options.webhooks:
                result.crossings = _webhook_step(story, pools.take(0.0, least=2), folder, echo)
            result.status = ledger.status()
            result.vendor_states = _vendor_states(sandbox, pairs)
            result.report_path = _write_report(ledger, folder, sandbox.clock.now())
    result.seconds = time.perf_counter() - started
    return result


def _seed(
    sandbox: Sandbox, count: int, folder: Path, ledger: Ledger, echo: Callable[[str], None]
) -> list[tuple[int, int]]:
    """`count` tickets on each side, linked one to one through a CSV import."""
    so_ids = sandbox.superoffice.seed_tickets(count, title="Demo request {n}")
    zd_ids = sandbox.zendesk.seed_tickets(count=count, template={"subject": "Demo request {n}"})
    pairs = list(zip(so_ids, zd_ids, strict=True))
    links = folder / "links.csv"
    _write_links(links, pairs)
    report = import_link_file(ledger, links)
    if not report.ok:  # pragma: no cover - the file is generated just above
        raise RuntimeError(f"demo links did not import: {report}")
    echo(f"Seeded {count:,} tickets on each side and linked them ({links.name}).")
    return pairs


def _acts(story: _Story, pools: _Pools) -> Iterator[tuple[str, str, Callable[[], RunResult]]]:
    """The story: each act changes the vendors, moves the clock, then yields its run."""
    so, zd, clock = story.sandbox.superoffice, story.sandbox.zendesk, story.clock

    # History in SuperOffice before the move: old deletions long gone by retention, recent
    # ones still in the recycle bin (a few restored), and a few Zendesk copies deleted by hand.
    purged_by_retention = pools.take(0.06)
    so.soft_delete(story.so(purged_by_retention), associate=SO_AGENT)
    clock.advance(38 * 86_400)
    recent = pools.take(0.08)
    so.soft_delete(story.so(recent), associate=SO_AGENT)
    clock.advance(2 * 86_400)
    so.restore(story.so(recent[: len(recent) // 10]), associate=SO_AGENT)
    mistaken = pools.take(0.01)
    zd.agent_act("delete", story.zd(mistaken), agent=ZD_AGENT)
    clock.set(MIGRATION_DAY)
    yield (
        "migration",
        f"{len(purged_by_retention)} purged + {len(recent)} deleted in SuperOffice, "
        f"{len(mistaken)} deleted in Zendesk only",
        story.migrate,
    )

    # Day 1: agents at work on both sides; a few tickets both restored and purged at once.
    clock.advance(86_400)
    so_deleted, zd_deleted = pools.take(0.03), pools.take(0.03)
    so.soft_delete(story.so(so_deleted), associate=SO_AGENT)
    zd.agent_act("delete", story.zd(zd_deleted), agent=ZD_AGENT)
    kept = recent[len(recent) // 10 :]
    conflicts = kept[:3]
    zd_restored = kept[3 : 3 + max(1, len(kept) // 10)]
    zd.agent_act("restore", story.zd(zd_restored), agent=ZD_AGENT)
    so.restore(story.so(conflicts), associate=SO_AGENT)
    zd.agent_act("purge", story.zd(conflicts), agent=ZD_AGENT)
    clock.advance(3600)
    yield (
        "sync 1",
        f"{len(so_deleted)} deleted in SuperOffice, {len(zd_deleted)} deleted and "
        f"{len(zd_restored)} restored in Zendesk, {len(conflicts)} restored in one and "
        "purged in the other",
        story.sync,
    )

    # Day 3: Zendesk agents purge some of their deletions; SuperOffice restores a few.
    clock.advance(2 * 86_400)
    zd_purged = zd_deleted[: len(zd_deleted) // 3]
    zd.agent_act("purge", story.zd(zd_purged), agent=ZD_AGENT)
    so_restored = so_deleted[: len(so_deleted) // 9]
    so.restore(story.so(so_restored), associate=SO_AGENT)
    clock.advance(3600)
    yield (
        "sync 2",
        f"{len(zd_purged)} purged in Zendesk, {len(so_restored)} restored in SuperOffice",
        story.sync,
    )

    # Day 18: SuperOffice's retention job has removed what was deleted 14 days ago.
    clock.advance(15 * 86_400)
    more = pools.take(0.01)
    so.soft_delete(story.so(more), associate=SO_AGENT)
    clock.advance(3600)
    yield (
        "sync 3",
        f"15 days later: SuperOffice retention ran; {len(more)} more deleted in SuperOffice",
        story.sync,
    )

    # Day 40: Zendesk has scrubbed what was deleted 30 days ago.
    clock.advance(22 * 86_400)
    yield ("sync 4", "22 days later: Zendesk's 30-day scrub ran", story.sync)

    clock.advance(3600)
    yield ("sync 5", "an idle run: nothing changed", story.sync)


def _webhook_step(
    story: _Story, indexes: Sequence[int], folder: Path, echo: Callable[[str], None]
) -> list[Crossing]:
    """`bridge serve` in this process on a loopback port, the simulators' webhooks
    registered to it (as `bridge webhooks register` does); an agent deletes a ticket in
    each simulator, and the other side is watched until the deletion arrives, with no
    scheduled run. The clock runs on (50 times real time) so that Zendesk's delete job
    finishes; serve checks the calls' signed times against it."""
    from bridge.serve.server import BackgroundServer, Service
    from bridge.webhook_registration import register_config

    sandbox, clock = story.sandbox, story.clock
    clock.set_speed(50.0)
    clock.unfreeze()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    config_path = sandbox.write_config(folder, serve_port=port)
    register_config(config_path)
    config = load_config(config_path)
    service = Service({config.pair: config}, now=clock.now, lease_retry=0.5)
    service.start()
    server = BackgroundServer(service.app, port=port).start()
    echo(f"Webhooks: bridge serve on {server.url}, both simulators' webhooks registered to it.")
    (so_a, zd_a), (so_b, zd_b) = (story.pairs[i] for i in indexes)

    def so_deleted() -> bool:
        return (sandbox.superoffice.ticket_state(so_a) or {}).get("base_status") == "Deleted"

    try:
        crossings = [
            _cross(
                lambda: sandbox.zendesk.agent_act("delete", [zd_a], agent=ZD_AGENT),
                (ZENDESK, zd_a, SUPEROFFICE, so_a),
                lambda: (
                    (sandbox.superoffice.ticket_state(so_a) or {}).get("base_status") == "Deleted"
                ),
            ),
            _cross(
                lambda: sandbox.superoffice.soft_delete([so_b], associate=SO_AGENT),
                (SUPEROFFICE, so_b, ZENDESK, zd_b),
                lambda: sandbox.zendesk.ticket_state(zd_b) == "deleted",
            ),
        ]
    finally:
        server.stop()
        service.close()
        clock.freeze()
    for c in crossings:
        echo(
            f"  deleted in {c.source} (ticket {c.source_ticket}): deleted in {c.target} "
            f"(ticket {c.target_ticket}) {c.seconds:.1f} s later, with no scheduled run"
        )
    return crossings


def _cross(
    act: Callable[[], object],
    tickets: tuple[Side, int, Side, int],
    arrived: Callable[[], bool],
    timeout: float = 60.0,
) -> Crossing:
    started = time.perf_counter()
    act()
    while not arrived():
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"the deletion of {tickets[0]} {tickets[1]} did not cross")
        time.sleep(0.02)
    return Crossing(*tickets, seconds=time.perf_counter() - started)


def _vendor_states(sandbox: Sandbox, pairs: Sequence[tuple[int, int]]) -> dict[str, dict[str, int]]:
    """What the simulators hold, in the ledger's words, to set beside what bridge recorded."""
    words = {"active": "active", "deleted": "soft_deleted", "purged": "purged"}
    so: Counter[str] = Counter()
    zd: Counter[str] = Counter()
    for so_id, zd_id in pairs:
        info = sandbox.superoffice.ticket_state(so_id)
        if sandbox.superoffice.is_purged(so_id) or info is None:
            so["purged"] += 1
        else:
            so["soft_deleted" if info["base_status"] == "Deleted" else "active"] += 1
        zd[words.get(sandbox.zendesk.ticket_state(zd_id) or "purged", "purged")] += 1
    return {SUPEROFFICE: dict(so), ZENDESK: dict(zd)}


def _round_line(summary: RoundSummary) -> str:
    return (
        f"  {summary.name:<10} {summary.day}  seen {summary.changes_seen:>5}  copied "
        f"{summary.copied:>5}  confirmed {summary.confirmed:>5}  conflicts {summary.conflicts_open}"
        f"  purges pending {summary.purges_pending:>3} verified {summary.purges_verified:>3}"
        f"  -> {summary.outcome}"
    )


def _write_report(ledger: Ledger, folder: Path, now: datetime) -> Path | None:
    """The audit report, when this build has `bridge.report` (imported guarded)."""
    try:
        from bridge import __version__
        from bridge.report import Period, ReportMeta, parse_moment, write_report
    except ImportError:  # pragma: no cover - a build without the report module
        return None
    with ledger.audit_view() as view:
        bounds = view.bounds()
    first = bounds[0] if bounds else now
    period = Period(
        parse_moment(first.date().isoformat(), end=False),
        parse_moment(now.date().isoformat(), end=True),
    )
    meta = ReportMeta(period, now, ledger.path or "database", __version__)
    path = folder / "bridge-report.html"
    with path.open("w", encoding="utf-8") as out:
        write_report(ledger, meta, "html", out)
    return path


def tally(result: DemoResult) -> Counter[str]:
    """Totals over every run of the demo (for the closing summary)."""
    totals: Counter[str] = Counter()
    for summary in result.rounds:
        totals["seen"] += summary.changes_seen
        totals["copied"] += summary.copied
        totals["confirmed"] += summary.confirmed
        totals["verified"] += summary.purges_verified
    return totals
