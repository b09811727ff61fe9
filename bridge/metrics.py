"""Metrics in the Prometheus text format: a textfile for cron, an HTTP endpoint for `--every`,
and `bridge serve`'s `/metrics` (the same, with its webhook counters: `WebhookCounters`).

The values come from the ledger (`bridge.ledger.metrics`), so a textfile written by one
cron run after another counts the pair's whole history, as a long-running loop's endpoint
does: runs by outcome, bridge's copies by transition and direction, links needing a person,
operations open by age, vendor calls and 429 answers (each run counts its own, through the
HTTP client's observer, into its counts in the ledger: `bridge.once.count_vendor_calls`,
so that a run asked for no metrics loads none of this), and when the
pair last succeeded. `prometheus_client` writes the format, the textfile (atomically: a
node_exporter textfile collector never reads half a file) and serves the endpoint; the
endpoint serves the facts read after the latest run, so a scrape never touches the ledger
from another thread.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Gauge,
    start_http_server,
    write_to_textfile,
)
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bridge.core.model import Side, Sides
from bridge.ledger import Ledger
from bridge.ledger.metrics import AGE_BUCKETS, LedgerFacts, ledger_facts
from bridge.ledger.tables import OperationStatus

__all__ = [
    "LedgerCollector",
    "MetricsServer",
    "PairLedgers",
    "WebhookCounters",
    "registry_for",
    "serve_metrics",
    "write_metrics_file",
]


class LedgerCollector(Collector):
    """The metrics of the latest facts read from the ledger (`refresh`)."""

    def __init__(self, sides: Sides) -> None:
        self._sides = sides
        self._facts = LedgerFacts()
        self._lock = threading.Lock()

    def refresh(
        self, ledger: Ledger, now: datetime, success_outcomes: Collection[str]
    ) -> LedgerFacts:
        """Read the ledger again; later scrapes serve what was read."""
        facts = ledger_facts(ledger, now, success_outcomes)
        with self._lock:
            self._facts = facts
        return facts

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            facts = self._facts
        yield from _metrics(facts, self._sides)


def _metrics(facts: LedgerFacts, sides: Sides) -> Iterator[Metric]:
    links = GaugeMetricFamily("bridge_links", "Linked ticket pairs in the ledger.")
    links.add_metric([], facts.links)
    yield links

    runs = CounterMetricFamily(
        "bridge_runs",
        "Runs recorded in the ledger, by kind and outcome.",
        labels=["kind", "outcome"],
    )
    for (kind, outcome), n in sorted(facts.runs.items()):
        runs.add_metric([kind, outcome], n)
    yield runs

    copies = CounterMetricFamily(
        "bridge_transitions",
        "Transitions bridge copied and saw done, by kind and direction (source_to_target).",
        labels=["transition", "direction"],
    )
    for (target, transition), n in sorted(facts.copies.items()):
        source = sides.other(Side(target)) if target in sides else "unknown"
        copies.add_metric([transition, f"{source}_to_{target}"], n)
    yield copies

    attention = GaugeMetricFamily(
        "bridge_conflicts_open",
        "Links that need a person, by kind (conflict, divergence, held, failed, ...).",
        labels=["kind"],
    )
    for kind in sorted({"conflict", "divergence", *facts.attention}):
        attention.add_metric([kind], facts.attention.get(kind, 0))
    yield attention

    pending = GaugeMetricFamily(
        "bridge_operations_pending",
        "Operations not yet done, by status and age since they were planned.",
        labels=["status", "age"],
    )
    for status in OperationStatus.OPEN:
        for age, _upto in AGE_BUCKETS:
            pending.add_metric([status, age], facts.pending.get((status, age), 0))
    yield pending

    calls = CounterMetricFamily(
        "bridge_vendor_calls",
        "HTTP requests sent to each vendor, retries included.",
        labels=["side"],
    )
    limited = CounterMetricFamily(
        "bridge_vendor_rate_limited",
        "Vendor answers 429 (rate limited), each retried after its wait.",
        labels=["side"],
    )
    for side in sides:
        calls.add_metric([side], facts.calls.get(side, 0))
        limited.add_metric([side], facts.rate_limited.get(side, 0))
    yield calls
    yield limited

    last = GaugeMetricFamily(
        "bridge_last_success_timestamp_seconds",
        "When the latest successful run ended (Unix time; 0: never).",
    )
    last.add_metric([], facts.last_success.timestamp() if facts.last_success else 0.0)
    yield last


class PairLedgers(Collector):
    """Several pairs' ledger metrics in one exposition (`bridge serve`), each sample
    labelled with its pair; one pair's are as `sync` gives them, unlabelled."""

    def __init__(self, collectors: Mapping[str, LedgerCollector]) -> None:
        self._collectors = dict(collectors)

    def collect(self) -> Iterator[Metric]:
        if len(self._collectors) == 1:
            yield from next(iter(self._collectors.values())).collect()
            return
        families: dict[str, Metric] = {}
        for pair, collector in self._collectors.items():
            for family in collector.collect():
                merged = families.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                for sample in family.samples:
                    merged.add_sample(sample.name, {**sample.labels, "pair": pair}, sample.value)
        yield from families.values()


class WebhookCounters:
    """`bridge serve`'s counters since it started, by pair and side: webhook calls
    received, refused (by reason), duplicates, ignored (by reason), echoes of bridge's
    own writes; hints queued, tickets no link holds, the queue's depth, targeted runs (by
    outcome) and the times a run waited for the lease another run held."""

    def __init__(self, registry: CollectorRegistry) -> None:
        by_side = ["pair", "side"]
        self.received = PromCounter(
            "bridge_webhooks_received",
            "Webhook calls received (every POST to a webhook endpoint).",
            by_side,
            registry=registry,
        )
        self.refused = PromCounter(
            "bridge_webhooks_refused",
            "Webhook calls refused, by reason: signature (401), replay (401: outside the "
            "replay window), too_large (413), not_configured (404: no webhook secret).",
            [*by_side, "reason"],
            registry=registry,
        )
        self.duplicates = PromCounter(
            "bridge_webhooks_duplicates",
            "Webhook calls already received (the same delivery id or body): answered 202, "
            "not queued again.",
            by_side,
            registry=registry,
        )
        self.ignored = PromCounter(
            "bridge_webhooks_ignored",
            "Signed webhook calls answered 202 and ignored, by reason: event (not about a "
            "ticket's deletion state), unreadable (a body not in the vendor's shape).",
            [*by_side, "reason"],
            registry=registry,
        )
        self.echoes = PromCounter(
            "bridge_webhook_echoes",
            "Hints that were bridge's own writes coming back, dropped without a read.",
            by_side,
            registry=registry,
        )
        self.echo_reads = PromCounter(
            "bridge_webhook_echo_reads",
            "Echoes of bridge's own writes not yet confirmed: looked up once to confirm.",
            by_side,
            registry=registry,
        )
        self.unlinked = PromCounter(
            "bridge_hints_unlinked",
            "Tickets webhooks named that no link holds: ignored.",
            by_side,
            registry=registry,
        )
        self.queued = PromCounter(
            "bridge_hints_queued",
            "Tickets named by accepted webhook calls, queued for a targeted run.",
            by_side,
            registry=registry,
        )
        self.depth = Gauge(
            "bridge_hints_queue_depth",
            "Tickets waiting for the next targeted run.",
            ["pair"],
            registry=registry,
        )
        self.runs = PromCounter(
            "bridge_hint_runs",
            "Targeted runs (hints coalesced into one run), by outcome.",
            ["pair", "outcome"],
            registry=registry,
        )
        self.lease_waits = PromCounter(
            "bridge_hint_lease_waits",
            "Targeted runs put off because another run (a scheduled sync) held the lease; "
            "their hints are kept and run later.",
            ["pair"],
            registry=registry,
        )


def registry_for(collector: LedgerCollector) -> CollectorRegistry:
    """A registry of bridge's metrics alone (no process or platform metrics)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def write_metrics_file(path: Path, registry: CollectorRegistry) -> None:
    """Replace `path` with the metrics, atomically (a temporary file renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)


@dataclass
class MetricsServer:
    """The endpoint serving the metrics, in a daemon thread."""

    server: WSGIServer
    host: str

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
    """Serve the metrics on `host:port` (port 0: any free one) until `stop`."""
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(server, host)
