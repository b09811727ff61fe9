"""Many pairs' simulators in child processes, so that a workers benchmark measures bridge's
workers and not the simulators they talk to (issue 18).

Each child holds some Zendesk accounts, each shared by a group of pairs (one Zendesk
simulator per account, as pairs sharing an account share its base URL and so its budget),
and one SuperOffice simulator per pair, all on the real clock. It seeds each pair's linked
tickets, then answers requests over a pipe: make changes, say which pairs' changes have
reached the other side, and report each account's calls per minute (counted by arrival at
the simulator) and every irreversible request it accepted (the purge logs).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import traceback
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from bridge.sandbox import SimClock
from bridge.sandbox.counters import Counters
from bridge.vendors.registry import SUPEROFFICE_VENDOR, ZENDESK_VENDOR
from bridge.vendors.superoffice.sim.simulator import SuperOfficeSimulator
from bridge.vendors.zendesk.sim.simulator import ZendeskSimulator

__all__ = ["PairSims", "SimsProcess"]

#: seconds the parent waits for a child's answer (seeding 10,000s of tickets included)
REPLY_TIMEOUT = 900.0
#: Zendesk jobs done in a fraction of a second (the simulator's default is 1 s queued,
#: then 1.5 s + 0.1 s per ticket): the workers, not the vendor's job queue, are measured
FAST_JOBS = {"job_queue_seconds": 0.05, "job_base_seconds": 0.1, "job_item_seconds": 0.001}


class MinuteCounters(Counters):
    """The simulator's request counters, plus requests per minute of arrival: what the
    vendor counts against an account's per-minute limit."""

    def __init__(self, clock: SimClock) -> None:
        super().__init__()
        self._clock = clock
        self.minutes: Counter[int] = Counter()

    def record(self, route_name: str) -> None:
        super().record(route_name)
        with self._lock:
            self.minutes[int(self._clock.timestamp() // 60)] += 1

    def since(self, minute: int) -> dict[int, int]:
        """Requests per minute, from `minute` on."""
        with self._lock:
            return {m: n for m, n in self.minutes.items() if m >= minute}


@dataclass(frozen=True)
class PairSims:
    """What the parent needs of one pair's simulators: ports and the seeded ticket ids."""

    zendesk_port: int
    superoffice_port: int
    so_ids: list[int]
    zd_ids: list[int]


class _Child:
    """The child's state: the simulators, by account and by pair."""

    def __init__(
        self, accounts: Mapping[str, Sequence[str]], links: int, limits: bool, rpm: int
    ) -> None:
        clock = SimClock()
        self.zendesk: dict[str, ZendeskSimulator] = {}
        self.superoffice: dict[str, SuperOfficeSimulator] = {}
        self.account_of: dict[str, str] = {}
        self.ids: dict[str, tuple[list[int], list[int]]] = {}
        for account, pairs in accounts.items():
            zendesk = ZENDESK_VENDOR.simulator(port=0, clock=clock)
            zendesk.counters = MinuteCounters(clock)
            zendesk.configure({"rate_limits": limits, "plan": rpm, **FAST_JOBS})
            zendesk.start()
            self.zendesk[account] = zendesk
            for pair in pairs:
                superoffice = SUPEROFFICE_VENDOR.simulator(port=0, clock=clock)
                if not limits:
                    superoffice.configure({"requests_per_second": None})
                superoffice.start()
                self.superoffice[pair] = superoffice
                self.account_of[pair] = account
                so_ids = superoffice.seed_tickets(links, title="Bench {n}")
                zd_ids = zendesk.seed_tickets(count=links, template={"subject": "Bench {n}"})
                self.ids[pair] = (so_ids, zd_ids)

    def facts(self) -> dict[str, PairSims]:
        return {
            pair: PairSims(
                zendesk_port=self.zendesk[self.account_of[pair]].port,
                superoffice_port=self.superoffice[pair].port,
                so_ids=so_ids,
                zd_ids=zd_ids,
            )
            for pair, (so_ids, zd_ids) in self.ids.items()
        }

    def act(self, changes: Mapping[str, Mapping[str, list[int]]]) -> None:
        """Per pair: `so_delete` (SuperOffice soft deletes by a user), `zd_delete` (Zendesk
        soft deletes by an agent), `so_purge` (SuperOffice's retention job removing
        soft-deleted tickets, which bridge finds by its sweep and copies as a purge)."""
        for pair, change in changes.items():
            superoffice = self.superoffice[pair]
            zendesk = self.zendesk[self.account_of[pair]]
            superoffice.soft_delete(change.get("so_delete", []))
            zendesk.agent_act("delete", change.get("zd_delete", []), agent=(7, "Ann"))
            superoffice.purge(change.get("so_purge", []))

    def pending(self, expected: Mapping[str, Mapping[str, list[int]]]) -> dict[str, int]:
        """Per pair whose expected copies have not all reached their target yet, how many
        have not: `zd_deleted`, `zd_purged` (Zendesk states) and `so_deleted` (SuperOffice)."""
        waiting: dict[str, int] = {}
        for pair, wanted in expected.items():
            zendesk = self.zendesk[self.account_of[pair]]
            superoffice = self.superoffice[pair]
            missing = (
                sum(zendesk.ticket_state(t) != "deleted" for t in wanted.get("zd_deleted", []))
                + sum(zendesk.ticket_state(t) != "purged" for t in wanted.get("zd_purged", []))
                + sum(
                    not (superoffice.ticket_state(t) or {}).get("deleted_at")
                    for t in wanted.get("so_deleted", [])
                )
            )
            if missing:
                waiting[pair] = missing
        return waiting

    def report(self, since_minute: int) -> dict[str, Any]:
        """Per account: requests per minute from `since_minute` on, 429s; per simulator:
        irreversible requests accepted, flagged duplicates and tickets purged twice."""
        accounts: dict[str, Any] = {}
        for account, zendesk in self.zendesk.items():
            counters = zendesk.counters
            assert isinstance(counters, MinuteCounters)
            accounts[account] = {
                "minutes": counters.since(since_minute),
                "throttled": int(counters.snapshot()["statuses"].get("429", 0)),
                **_purges(zendesk.purge_log()),
            }
        superoffice = [_purges(sim.purge_log()) for sim in self.superoffice.values()]
        return {"accounts": accounts, "superoffice": superoffice}

    def stop(self) -> None:
        for simulator in [*self.zendesk.values(), *self.superoffice.values()]:
            simulator.stop()


def _purges(log: list[dict[str, Any]]) -> dict[str, int]:
    per_ticket = Counter(record["ticket_id"] for record in log)
    return {
        "purges": len(log),
        "duplicates": sum(1 for record in log if record["duplicate"]),
        "purged_twice": sum(1 for n in per_ticket.values() if n > 1),
    }


def _serve(
    conn: Connection, accounts: dict[str, list[str]], links: int, limits: bool, rpm: int
) -> None:
    """Child process: start and seed, then answer until told to stop (or until the parent's
    end of the pipe closes, so a dead parent leaves no orphan)."""
    child: _Child | None = None
    try:
        child = _Child(accounts, links, limits, rpm)
        conn.send(("ok", child.facts()))
        while True:
            try:
                command, argument = conn.recv()
            except EOFError:
                return
            if command == "stop":
                conn.send(("ok", None))
                return
            handler = {"act": child.act, "pending": child.pending, "report": child.report}
            conn.send(("ok", handler[command](argument)))
    except BaseException:
        with contextlib.suppress(OSError, ValueError):
            conn.send(("error", traceback.format_exc()))
        raise
    finally:
        if child is not None:
            child.stop()
        conn.close()


class SimsProcess:
    """One child process of simulators (spawned: it shares no memory with this one)."""

    def __init__(
        self, accounts: Mapping[str, Sequence[str]], *, links: int, limits: bool, rpm: int
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child_conn = context.Pipe()
        plain = {account: list(pairs) for account, pairs in accounts.items()}
        self.process = context.Process(
            target=_serve,
            args=(child_conn, plain, links, limits, rpm),
            name="bench-sims",
            daemon=True,
        )
        self._child_conn: Connection | None = child_conn

    def start(self) -> None:
        """Spawn the child; `facts()` waits until it has seeded and serves."""
        self.process.start()
        if self._child_conn is not None:  # only the child holds its end: EOF if it dies
            self._child_conn.close()
            self._child_conn = None

    def facts(self) -> dict[str, PairSims]:
        facts = self._reply()
        assert isinstance(facts, dict)
        return facts

    def request(self, command: str, argument: Any) -> Any:
        self._conn.send((command, argument))
        return self._reply()

    def stop(self) -> None:
        """Ask the child to stop; kill it if it does not. Idempotent."""
        if self.process.pid is None:
            return
        if self.process.is_alive():
            with contextlib.suppress(OSError, EOFError, ValueError):
                self._conn.send(("stop", None))
                if self._conn.poll(10):
                    self._conn.recv()
            self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self._conn.close()

    def _reply(self) -> Any:
        if not self._conn.poll(REPLY_TIMEOUT):
            raise TimeoutError("simulator child did not answer")
        try:
            status, value = self._conn.recv()
        except EOFError:
            self.process.join(10)
            raise RuntimeError(f"simulator child exited ({self.process.exitcode})") from None
        if status != "ok":
            raise RuntimeError(f"simulator child failed:\n{value}")
        return value
