"""An interrupted `bridge migrate` (a child process killed or stopped mid-run) resumes with
no write sent twice and none skipped; the simulators count every call per route."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter

from tests.migrate.conftest import Env
from tests.migrate.test_refusals import MIGRATE

ZD_SOFT_DELETE = "DELETE tickets/destroy_many"


def test_a_crash_before_the_third_batch_then_resume_sends_each_batch_once(env: Env) -> None:
    pairs = env.link(260)
    env.so.soft_delete([s for s, _ in pairs[:250]])
    env.reset_counters()
    crashed = env.bridge(*MIGRATE, crash_at="before_send:3")
    assert crashed.returncode == -signal.SIGKILL
    assert env.writes().get(ZD_SOFT_DELETE) == 2
    # the two jobs sent may still be running: at most their tickets are deleted
    assert Counter(env.zd_state(z) for _, z in pairs)["deleted"] <= 200

    time.sleep(1.1)  # the dead run's lease (1 s in this config) expires
    refused = env.bridge(*MIGRATE)
    assert refused.returncode == 2
    assert "--resume" in refused.stderr

    resumed = env.bridge(*MIGRATE, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "converged" in resumed.stdout
    assert env.writes().get(ZD_SOFT_DELETE) == 3  # the third batch, once
    assert Counter(env.zd_state(z) for _, z in pairs) == {"active": 10, "deleted": 250}
    assert Counter(op.status for op in env.ops()) == {"confirmed": 250}

    env.reset_counters()
    again = env.bridge(*MIGRATE)
    assert again.returncode == 0, again.stderr
    assert ZD_SOFT_DELETE not in env.writes()


def test_sigterm_finishes_the_batch_in_flight_then_resume_completes(env: Env) -> None:
    # one Zendesk job at a time, so the run is still sending when the signal comes
    text = env.config_path.read_text(encoding="utf-8")
    env.config_path.write_text(text.replace("job_limit = 30", "job_limit = 1"), encoding="utf-8")
    pairs = env.link(300)
    env.so.soft_delete([s for s, _ in pairs])
    env.reset_counters()
    child = subprocess.Popen(
        env.command(*MIGRATE), env=env.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while env.writes().get(ZD_SOFT_DELETE, 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 1, stderr.decode()
    first = env.writes()[ZD_SOFT_DELETE]
    assert first < 3
    assert Counter(env.zd_state(z) for _, z in pairs)["deleted"] <= first * 100

    time.sleep(1.1)
    resumed = env.bridge(*MIGRATE, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert env.writes()[ZD_SOFT_DELETE] == 3  # ⌈300/100⌉ in all: none twice, none skipped
    assert Counter(env.zd_state(z) for _, z in pairs) == {"deleted": 300}
    assert Counter(op.status for op in env.ops()) == {"confirmed": 300}
