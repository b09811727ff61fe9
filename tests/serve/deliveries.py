"""The simulators' own webhooks, registered to a running `bridge serve`: real deliveries
(signed by the vendor's format, retried and faulted by the simulator), for the end-to-end
tests and `bench/webhooks.py --faults`.

`hooked_world` sets it up as an operator would: the sandbox config with a `[serve]` port,
`bridge webhooks register` (here `register_config`), then `bridge serve` (in a thread).
`faulty_changes` is the convergence scenario of issue 19: changes on both sides while the
simulators lose, repeat and reorder their webhooks, then one scheduled sync; it measures
what crossed by hints, what only the sync copied, and what went wrong.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bridge.serve.server import BackgroundServer, Service
from bridge.webhook_registration import register_config
from tests.e2e.conftest import Live
from tests.sandbox_world import running_sandbox

#: issue 19's faults: 30 % of webhooks lost; 10 % repeated or reordered (5 % each). The
#: first rule that fires wins, so each later probability is of what the earlier left.
FAULTS = (
    {"kind": "drop", "probability": 0.30},
    {"kind": "duplicate", "probability": 0.05 / 0.70},
    {"kind": "reorder", "probability": 0.05 / 0.65, "delay": 2.0},
)


class Hooked(Live):
    """The simulators on a running clock, their webhooks registered to `bridge serve`."""

    service: Service
    server: BackgroundServer
    port: int

    def write_hooked_config(self, **sync: str) -> None:
        """The sandbox config with `[serve]` on a free port, webhooks registered to it."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.config_path = self.sandbox.write_config(self.folder, serve_port=self.port, **sync)
        text = self.config_path.read_text(encoding="utf-8")
        if self.ledger_url is not None:  # as `SandboxWorld.rewrite_config` points it
            written = 'url = "sqlite:///bridge.db"\n'
            assert written in text, "the sandbox config's ledger line changed"
            text = text.replace(written, f'url = "{self.ledger_url}"\n')
        rps = f"requests_per_second = {self.client_rps}\n"
        text = text.replace("requests_per_second = 10\n", rps)
        self.config_path.write_text(text, encoding="utf-8")
        self.register()

    def register(self) -> None:
        """Forget what the simulators still hold for no one, and register (again: this
        switches a webhook the vendor stopped back on)."""
        for simulator in self.sandbox.simulators.values():
            simulator.webhooks.reset()
        reports = register_config(self.config_path)
        assert not any(report.attention for report in reports), reports

    def start_serving(self, *, coalesce: float = 0.2) -> None:
        """`bridge serve` in a thread. The simulators sign with their clock, which runs
        50 times faster than serve's: a day's replay window keeps their calls in it for
        the half hour a test or bench may take."""
        text = self.config_path.read_text(encoding="utf-8")
        serve = f"[serve]\ncoalesce_seconds = {coalesce}\nreplay_window_seconds = 86400\n"
        self.config_path.write_text(text.replace("[serve]\n", serve, 1), encoding="utf-8")
        config = self.config()
        self.service = Service({config.pair: config}, lease_retry=0.3)
        self.service.start()
        self.server = BackgroundServer(self.service.app, port=self.port).start()

    def stop_serving(self) -> None:
        self.server.stop()
        self.service.close()

    def settled(self) -> bool:
        """Both simulators sent what was due, and `serve` has nothing waiting or running."""
        if any(sim.webhooks.pending() for sim in self.sandbox.simulators.values()):
            return False
        facts = self.service.health()["pairs"][self.config().pair]
        return not facts["queue_depth"] and not facts["running"]

    def attempts(self) -> list[Any]:
        return [a for sim in self.sandbox.simulators.values() for a in sim.webhooks.attempts()]


@contextmanager
def hooked_world(folder: Path, *, ledger_url: str | None = None, **sync: str) -> Iterator[Hooked]:
    """`Hooked` over simulators sped up 50 times from now (vendor jobs end in a blink), on
    the ledger at `ledger_url` (None: the config's own SQLite file)."""
    with running_sandbox(50.0, start=datetime.now(UTC)) as sandbox:
        world = Hooked(
            sandbox,
            folder,
            ledger_url=ledger_url,
            lease_seconds="60",
            max_purges_per_run="100000",
        )
        world.write_hooked_config(lease_seconds="60", max_purges_per_run="100000", **sync)
        try:
            yield world
        finally:
            world.close()


def wait_until(done: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until `done()`; AssertionError after `timeout`."""
    start = time.monotonic()
    while not done():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.02)
    return time.monotonic() - start


@dataclass
class FaultReport:
    """What `faulty_changes` saw."""

    links: int
    changes: int
    #: the webhook events the simulators sent, by what their fault rules did to them
    webhooks: Counter[str] = field(default_factory=Counter)
    #: links whose both sides reached their expected state before the scheduled sync
    by_hints: int = 0
    #: links the scheduled sync still had to copy
    by_sync: int = 0
    #: links not in their expected state at the end (a write where none belonged, a
    #: wrong state); and bridge's operations on links nobody changed
    wrong: int = 0
    writes_on_untouched: int = 0
    duplicate_purges: int = 0
    unannounced: int = 0
    hints_seconds: float = 0.0
    sync_outcome: str = ""

    @property
    def converged(self) -> bool:
        return self.by_hints + self.by_sync == self.changes and self.wrong == 0


def faulty_changes(world: Hooked, links: int) -> FaultReport:
    """Changes on both sides of `links` linked pairs, with `FAULTS` on both simulators'
    webhooks; the hints run, then one scheduled sync. Each fifth pair is deleted in
    Zendesk, each fifth in SuperOffice, each fifth deleted and then restored in Zendesk,
    each tenth purged in Zendesk; the rest nobody touches."""
    pairs = world.link(links)
    world.sync()  # every link's base known
    world.register()  # the seeding's ticket.created calls, to no one, forgotten
    for simulator in world.sandbox.simulators.values():
        simulator.webhooks.set_faults(FAULTS, replace=True)
    expected: dict[int, tuple[str, str]] = {}
    zd_delete, so_delete, zd_restore, zd_purge = [], [], [], []
    for n, (so_id, zd_id) in enumerate(pairs):
        kind = n % 10
        if kind in (0, 1):
            zd_delete.append(zd_id)
            expected[n] = ("deleted", "deleted")
        elif kind in (2, 3):
            so_delete.append(so_id)
            expected[n] = ("deleted", "deleted")
        elif kind in (4, 5):
            zd_restore.append(zd_id)
            expected[n] = ("active", "active")
        elif kind == 6:
            zd_purge.append(zd_id)
            expected[n] = ("deleted", "purged")
    untouched = [n for n in range(links) if n not in expected]
    for n in untouched:
        expected[n] = ("active", "active")
    report = FaultReport(links, links - len(untouched))

    started = time.monotonic()
    world.zd.agent_act("delete", zd_delete + zd_restore, agent=(7, "Ann"))
    world.so.soft_delete(so_delete, associate=7)
    world.zd.agent_act("purge", zd_purge, agent=(7, "Ann"))
    time.sleep(0.5)
    world.zd.agent_act("restore", zd_restore, agent=(7, "Ann"))
    wait_until(world.settled, 120, "the hints ran")
    report.hints_seconds = time.monotonic() - started
    changed = [n for n in range(links) if n not in untouched]
    report.by_hints = sum(1 for n in changed if world.states([pairs[n]])[0] == expected[n])

    result = world.sync()  # the scheduled sync: the safety net
    report.sync_outcome = result.outcome
    report.unannounced = sum(n for k, n in result.counts.items() if k.endswith(".unannounced"))
    report.by_sync = sum(1 for n in changed if world.states([pairs[n]])[0] == expected[n])
    report.by_sync -= report.by_hints
    report.wrong = sum(1 for n in range(links) if world.states([pairs[n]])[0] != expected[n])
    first_link = world.ledger.count_links() - links + 1
    untouched_links = {first_link + n for n in untouched}
    report.writes_on_untouched = sum(1 for op in world.ops() if op.link_id in untouched_links)
    for simulator in world.sandbox.simulators.values():
        log = simulator.purge_log()
        purges = Counter(r["ticket_id"] for r in log)
        report.duplicate_purges += sum(1 for r in log if r["duplicate"])
        report.duplicate_purges += sum(n - 1 for n in purges.values() if n > 1)
    events = {(a.target, a.delivery_id): a.fault for a in world.attempts() if a.attempt <= 1}
    report.webhooks.update(fault or "as sent" for fault in events.values())
    return report
