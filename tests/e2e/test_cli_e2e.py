"""`bridge sync` as a process: exit codes, the lease, `--every` and SIGTERM, the sandbox."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from bridge.ledger.tables import Lease, Run
from tests.conftest import both_backends
from tests.e2e.conftest import Live, states

SOFT = "DELETE tickets/destroy_many"


def _wait_for(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def _leases(world: Live) -> list[Lease]:
    with world.ledger.session() as session:
        return list(session.exec(select(Lease)))


def _runs(world: Live) -> list[Run]:
    with world.ledger.session() as session:
        return list(session.exec(select(Run)))


@both_backends
def test_exit_codes_converged_retry_config_attention(live: Live) -> None:
    pairs = live.link(3)
    assert live.bridge("sync").returncode == 0
    # 1: a write that failed and will be retried
    live.so.soft_delete([pairs[0][0]])
    live.zd.add_fault("job_failed", route=SOFT)  # every round of the run fails
    failed = live.bridge("sync")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "failures" in failed.stdout
    live.zd.clear_faults()
    assert live.bridge("sync").returncode == 0
    assert states(live, pairs)[0] == ("deleted", "deleted")
    # 4: a conflict needs a person
    so_id, zd_id = pairs[1]
    live.so.soft_delete([so_id])
    live.zd.agent_act("delete", [zd_id], agent=(7, "Ann"))
    assert live.bridge("sync").returncode == 0
    live.so.restore([so_id])
    live.zd.agent_act("purge", [zd_id], agent=(7, "Ann"))
    conflict = live.bridge("sync")
    assert conflict.returncode == 4, conflict.stdout + conflict.stderr
    listed = live.bridge("conflicts", "list")
    assert f"{so_id}" in listed.stdout
    assert "conflict" in listed.stdout
    # 2: a configuration error, nothing written
    text = live.config_path.read_text(encoding="utf-8")
    live.config_path.write_text(text.replace('direction = "both"', "direction = 7"))
    bad = live.bridge("sync")
    assert bad.returncode == 2
    assert "sync.direction" in bad.stderr
    assert len(_runs(live)) == 5


@both_backends
def test_a_second_concurrent_run_is_refused_naming_the_holder(live: Live) -> None:
    live.link(2)
    live.rewrite_config(lease_seconds="60", max_purges_per_run="1000")
    # the first run holds the lease while its export page is answered slowly: long enough
    # for a second process to start on a loaded machine (5 s was not, once, on PostgreSQL)
    live.zd.add_fault("slow", delay=12, route="GET incremental/tickets/cursor", count=1)
    first = live.popen("sync")
    _wait_for(lambda: live.zd.counters["GET incremental/tickets/cursor"] >= 1)
    second = live.bridge("sync")
    assert second.returncode == 3
    assert "another run holds the ledger" in second.stderr
    holder = _leases(live)[0].holder
    assert holder.endswith(f":{first.pid}")
    assert holder in second.stderr
    assert "since" in second.stderr
    assert first.wait(timeout=30) == 0
    assert _leases(live) == []  # released at the end
    assert live.bridge("sync").returncode == 0


@both_backends
def test_the_lease_of_a_killed_run_is_taken_over(live: Live) -> None:
    live.link(2)
    live.rewrite_config(lease_seconds="600", max_purges_per_run="1000")
    live.zd.add_fault("slow", delay=5, route="GET incremental/tickets/cursor", count=1)
    first = live.popen("sync")
    _wait_for(lambda: live.zd.counters["GET incremental/tickets/cursor"] >= 1)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    (lease,) = _leases(live)
    assert lease.holder == f"{socket.gethostname()}:{first.pid}"
    # the holder ran on this host and its process is gone: no need to wait 600 s
    assert live.bridge("sync").returncode == 0
    detail = next(e.detail or "" for e in live.events("lease_taken_over"))
    assert detail.startswith(f"{socket.gethostname()}:{first.pid} (its process is gone")
    assert _leases(live) == []


def _finished(world: Live) -> int:
    return len([r for r in _runs(world) if r.ended_at is not None])


@both_backends
def test_every_loops_and_sigterm_between_runs_exits_cleanly(live: Live) -> None:
    pairs = live.link(2)
    loop = live.popen("sync", "--every", "3s")
    _wait_for(lambda: _finished(live) >= 1)
    live.so.soft_delete([pairs[0][0]])
    _wait_for(lambda: live.zd_state(pairs[0][1]) == "deleted")
    done = _finished(live)
    _wait_for(lambda: _finished(live) > done)  # a run just ended: now it waits 3 s
    loop.send_signal(signal.SIGTERM)
    assert loop.wait(timeout=30) == 0
    assert _leases(live) == []
    assert {r.outcome for r in _runs(live)} == {"converged"}
    assert len(_runs(live)) >= 2


@both_backends
def test_sigterm_mid_batch_finishes_the_batch_records_and_releases(live: Live) -> None:
    pairs = live.link(250)
    assert live.bridge("sync").returncode == 0
    live.so.soft_delete([s for s, _ in pairs])
    live.zd.add_fault("slow", delay=1.5, route=SOFT, count=1)
    loop = live.popen("sync", "--every", "5m")
    _wait_for(lambda: live.zd.counters[SOFT] >= 1)
    loop.send_signal(signal.SIGTERM)
    assert loop.wait(timeout=60) == 1  # interrupted: the rest is for the next run
    out = loop.stderr.read() if loop.stderr else ""
    assert "finishing the batch in flight" in out
    assert _leases(live) == []
    assert _runs(live)[-1].outcome == "interrupted"
    assert live.zd.counters[SOFT] == 1  # no batch started after the signal
    statuses = {op.status for op in live.ops()}
    assert statuses <= {"confirmed", "sent", "planned"}
    assert len([op for op in live.ops() if op.status != "planned"]) == 100
    live.zd.finish_jobs()
    assert live.bridge("sync").returncode == 0
    live.zd.finish_jobs()
    assert states(live, pairs) == [("deleted", "deleted")] * 250
    assert live.zd.counters[SOFT] == 3


# SQLite only: `sandbox serve --write-config` writes a config whose ledger is its SQLite file
def test_sandbox_serve_writes_a_config_that_sync_uses_as_is(tmp_path: Path) -> None:
    folder = tmp_path / "try"
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bridge",
            "sandbox",
            "serve",
            "--zendesk-port",
            "0",
            "--superoffice-port",
            "0",
            "--write-config",
            str(folder),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: (folder / "bridge.toml").exists() and (folder / "bridge.db").exists())
        run = subprocess.run(
            [sys.executable, "-m", "bridge", "--config", str(folder / "bridge.toml"), "sync"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "converged" in run.stdout
        assert (folder / "secrets" / "zendesk.token").stat().st_mode & 0o077 == 0
    finally:
        serve.send_signal(signal.SIGINT)
        serve.wait(timeout=20)


@both_backends
def test_credentials_refused_on_a_write_exit_5_not_retry_later(live: Live) -> None:
    pairs = live.link(2)
    assert live.bridge("sync").returncode == 0
    live.so.soft_delete([pairs[0][0]])
    live.zd.add_fault("status", status=403, route=SOFT)  # the token may read, not delete
    refused = live.bridge("sync")
    assert refused.returncode == 5, refused.stdout + refused.stderr
    assert "zendesk refused our credentials or rights" in refused.stderr
    assert _runs(live)[-1].outcome == "unavailable"
    # refused again and again while nobody fixes it: still waiting, never given up
    for _ in range(6):
        assert live.bridge("sync").returncode == 5
    [waiting] = live.ops()
    assert (waiting.status, waiting.attempts) == ("planned", 0)
    # once the rights are fixed the soft delete goes out, with no person resolving it
    live.zd.clear_faults()
    assert live.bridge("sync").returncode in (0, 1)
    live.zd.finish_jobs()
    assert live.bridge("sync").returncode == 0
    assert live.zd.ticket_state(pairs[0][1]) == "deleted"


def _heartbeat(path: Path) -> dict[str, object]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


@both_backends
def test_every_keeps_going_through_a_held_lease_and_a_vendor_down(live: Live) -> None:
    live.link(2)
    beat = live.folder / "heartbeat.json"
    live.ledger.acquire_lease("sync", "elsewhere:1", timedelta(seconds=60))
    loop = live.popen("sync", "--every", "1s", "--heartbeat", str(beat))
    _wait_for(lambda: _heartbeat(beat).get("exit_code") == 3)
    assert _heartbeat(beat)["outcome"] == "skipped"
    assert loop.poll() is None  # still going
    live.ledger.release_lease("sync", "elsewhere:1")
    live.zd.add_fault("status", status=401)  # the token was revoked
    _wait_for(lambda: _heartbeat(beat).get("exit_code") == 5)
    assert loop.poll() is None
    live.zd.clear_faults()
    _wait_for(lambda: _heartbeat(beat).get("exit_code") == 0, timeout=40)
    beat_now = _heartbeat(beat)
    assert beat_now["outcome"] == "converged"
    assert beat_now["pid"] == loop.pid
    assert beat_now["next_run_at"]
    loop.send_signal(signal.SIGTERM)
    assert loop.wait(timeout=30) == 0
    err = loop.stderr.read() if loop.stderr else ""
    assert err.count("Skipped this run: another run holds the ledger: elsewhere:1") >= 1
    assert "backing off: 1 failed in a row" in err
    assert "Next run at " in err
    assert "Traceback" not in err
    assert _leases(live) == []


@both_backends
def test_log_level_from_v_q_then_the_environment_then_the_config(live: Live) -> None:
    live.link(1)

    def logged(*args: str, **env: str) -> str:
        done = subprocess.run(
            live.command(*args),
            env={**live.env(), **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stderr

    assert "run.start" not in logged("sync")  # the config says warning
    assert "run.start" in logged("sync", "-v")
    assert "run.start" in logged("sync", BRIDGE_LOG_LEVEL="info")
    assert "run.start" not in logged("sync", "-q", BRIDGE_LOG_LEVEL="info")
    assert "run.start" not in logged("--log-level", "error", "sync", BRIDGE_LOG_LEVEL="info")
    console = logged("sync", "-v", BRIDGE_LOG_FORMAT="console")
    assert "run.start" in console
    assert '"event": "run.start"' not in console  # not JSON
    assert '"event": "run.start"' in logged("-v", "sync", BRIDGE_LOG_FORMAT="json")
