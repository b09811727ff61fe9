"""Metrics in the Prometheus text format: the textfile a cron run writes, the endpoint a
`sync --every` loop serves; parsed with prometheus_client's own parser, read over HTTP."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import both_backends
from tests.migrate.conftest import SPEED, Env
from tests.sandbox_world import running_sandbox

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(text: str) -> Samples:
    """(sample name, sorted labels) → value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def env(tmp_path: Path, world_ledger_url: str | None) -> Iterator[Env]:
    with running_sandbox(SPEED) as sandbox:
        world = Env(sandbox, tmp_path / "bridge", ledger_url=world_ledger_url, lease_seconds="1")
        try:
            yield world
        finally:
            world.close()


@both_backends
def test_the_metrics_file_counts_runs_copies_calls_and_429s_from_the_ledger(
    env: Env, tmp_path: Path
) -> None:
    pairs = env.link(6)
    metrics = tmp_path / "textfile" / "bridge.prom"
    env.reset_counters()
    first = env.cli("sync", "--metrics-file", str(metrics))
    assert first.exit_code == 0, first.output
    calls_first = {"zendesk": env.zd.counts()["total"], "superoffice": env.so.counts()["total"]}
    samples = _samples(metrics.read_text(encoding="utf-8"))
    assert _value(samples, "bridge_runs_total", kind="sync", outcome="converged") == 1
    assert _value(samples, "bridge_links") == 6
    for side, calls in calls_first.items():
        assert _value(samples, "bridge_vendor_calls_total", side=side) == calls > 0
        assert _value(samples, "bridge_vendor_rate_limited_total", side=side) == 0
    assert _value(samples, "bridge_last_success_timestamp_seconds") > time.time() - 600

    # SuperOffice deletes three; Zendesk answers the first two export reads 429
    env.so.soft_delete([s for s, _ in pairs[:3]])
    env.zd.add_fault("status", status=429, retry_after=0, count=2, path="incremental")
    env.reset_counters()
    second = env.cli("sync", "--metrics-file", str(metrics))
    assert second.exit_code == 0, second.output
    samples = _samples(metrics.read_text(encoding="utf-8"))
    assert _value(samples, "bridge_runs_total", kind="sync", outcome="converged") == 2
    copies = "bridge_transitions_total"
    assert (
        _value(samples, copies, transition="soft_delete", direction="superoffice_to_zendesk") == 3
    )
    # counters over the whole history: the second run's calls come on top of the first's
    zendesk_calls = env.zd.counts()["total"]
    assert (
        _value(samples, "bridge_vendor_calls_total", side="zendesk")
        == calls_first["zendesk"] + zendesk_calls
    )
    assert _value(samples, "bridge_vendor_rate_limited_total", side="zendesk") == 2
    assert _value(samples, "bridge_conflicts_open", kind="conflict") == 0
    assert _value(samples, "bridge_operations_pending", status="planned", age="under_5m") == 0
    assert not list(metrics.parent.glob("bridge.prom.*"))  # no temporary file left behind


def test_open_operations_are_counted_by_age(env: Env, tmp_path: Path) -> None:
    """A write refused for our credentials stays planned: an open operation."""
    pairs = env.link(4)
    assert env.cli("sync").exit_code == 0
    env.so.soft_delete([s for s, _ in pairs[:2]])
    env.zd.add_fault("status", status=403, path="destroy_many")
    metrics = tmp_path / "bridge.prom"
    result = env.cli("sync", "--metrics-file", str(metrics))
    assert result.exit_code == 5, result.output
    samples = _samples(metrics.read_text(encoding="utf-8"))
    assert _value(samples, "bridge_operations_pending", status="planned", age="under_5m") == 2
    assert _value(samples, "bridge_operations_pending", status="planned", age="over_1d") == 0
    assert _value(samples, "bridge_runs_total", kind="sync", outcome="unavailable") == 1


def test_metrics_port_needs_every(env: Env) -> None:
    result = env.cli("sync", "--metrics-port", "0")
    assert result.exit_code == 2
    assert "--every" in result.output


def test_the_loop_serves_the_metrics_over_http_on_loopback(env: Env) -> None:
    env.link(3)
    process = env.popen("sync", "--every", "1s", "--metrics-port", "0")
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert line.startswith("Metrics at http://127.0.0.1:"), line
        url = line.split()[-1]
        deadline = time.monotonic() + 60
        runs = 0.0
        while time.monotonic() < deadline:
            answer = requests.get(url, timeout=5)
            assert answer.status_code == 200
            assert answer.headers["Content-Type"].startswith("text/plain")
            samples = _samples(answer.text)
            converged = (("kind", "sync"), ("outcome", "converged"))
            runs = samples.get(("bridge_runs_total", converged), 0.0)  # none before the first
            if runs >= 2:
                break
            time.sleep(0.2)
        assert runs >= 2  # refreshed after each run
        assert _value(samples, "bridge_links") == 3
        assert _value(samples, "bridge_vendor_calls_total", side="superoffice") > 0
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0
