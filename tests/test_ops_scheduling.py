"""The scheduling examples alert on what needs a person and let "retry later" pass: each
example's exit handling, run against a stand-in `bridge` exiting with every code."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from bridge.cli.exitcodes import NEEDS_A_PERSON, RETRY_LATER, ExitCode
from bridge.cli.schedule import BACKOFF_CAP, backs_off, next_wait

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "scheduling"
WRAPPER = EXAMPLES / "bridge-sync-alert"


def _fake_bridge(folder: Path, code: int) -> Path:
    """A `bridge` that prints its arguments and exits with `code`."""
    fake = folder / "fake-bridge"
    fake.write_text(f'#!/bin/sh\necho "bridge $*"\nexit {code}\n', encoding="utf-8")
    fake.chmod(0o755)
    return fake


def _wrapper(tmp_path: Path, code: int, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", str(WRAPPER), "--log-format", "json", "sync"],
        env={**os.environ, "BRIDGE": str(_fake_bridge(tmp_path, code)), **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_the_codes_split_into_retry_later_and_needs_a_person() -> None:
    assert {ExitCode.RETRY, ExitCode.LEASE_HELD} == RETRY_LATER
    assert {ExitCode.USAGE, ExitCode.ATTENTION, ExitCode.VENDOR, ExitCode.INTERNAL} == (
        NEEDS_A_PERSON
    )


@pytest.mark.parametrize("code", list(ExitCode))
def test_the_cron_wrapper_is_quiet_for_retry_later_and_alerts_otherwise(
    tmp_path: Path, code: ExitCode
) -> None:
    log = tmp_path / "sync.log"
    result = _wrapper(tmp_path, int(code), BRIDGE_SYNC_LOG=str(log))
    assert "bridge --log-format json sync" in log.read_text(encoding="utf-8")
    assert result.stdout == ""
    if code in NEEDS_A_PERSON:
        assert result.returncode == int(code)
        assert f"exit {int(code)}:" in result.stderr  # the one line cron mails
    else:
        assert result.returncode == 0
        assert result.stderr == ""  # nothing mailed


def test_the_cron_wrapper_without_a_log_passes_bridge_output_through(tmp_path: Path) -> None:
    result = _wrapper(tmp_path, 5)
    assert result.stdout.startswith("bridge --log-format json sync")
    assert "refused the credentials" in result.stderr
    assert result.returncode == 5


def test_the_crontab_mails_and_logs_through_the_wrapper() -> None:
    lines = (EXAMPLES / "bridge.cron").read_text(encoding="utf-8").splitlines()
    env = dict(line.split("=", 1) for line in lines if line[:1].isupper() and "=" in line)
    assert env["MAILTO"]
    assert env["BRIDGE_SYNC_LOG"].startswith("/var/log/")
    (job,) = [line for line in lines if line.startswith("*/5")]
    assert "/bridge-sync-alert " in job
    assert ">" not in job  # the wrapper's alert line must reach cron's mail
    assert os.access(WRAPPER, os.X_OK)


def test_the_systemd_unit_counts_exactly_retry_later_as_success() -> None:
    text = (EXAMPLES / "bridge-sync.service").read_text(encoding="utf-8")
    (line,) = [x for x in text.splitlines() if x.startswith("SuccessExitStatus=")]
    success = {int(word) for word in line.split("=", 1)[1].split()}
    assert success == {int(code) for code in RETRY_LATER}
    exec_start = next(x for x in text.splitlines() if x.startswith("ExecStart="))
    assert "/ticket-bridge " in exec_start  # not iproute2's bridge


@pytest.mark.parametrize("code", list(ExitCode))
def test_the_kubernetes_job_fails_only_when_a_person_is_needed(
    tmp_path: Path, code: ExitCode
) -> None:
    manifest = yaml.safe_load((EXAMPLES / "bridge-sync-cronjob.yaml").read_text("utf-8"))
    pod = manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (command,) = container["command"]
    assert Path(command).name == WRAPPER.name
    # the container's command, with the wrapper from docs/scheduling/ and a stand-in bridge
    image = tmp_path / "image"
    image.mkdir()
    shutil.copy(WRAPPER, image / WRAPPER.name)
    result = subprocess.run(
        ["/bin/sh", str(image / WRAPPER.name), *container["args"]],
        env={**os.environ, "BRIDGE": str(_fake_bridge(tmp_path, int(code)))},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (result.returncode != 0) == (code in NEEDS_A_PERSON)


def test_the_loop_backs_off_with_jitter_only_while_a_vendor_is_down() -> None:
    five = timedelta(minutes=5)
    assert not backs_off(ExitCode.RETRY)
    assert not backs_off(ExitCode.LEASE_HELD)
    assert backs_off(ExitCode.VENDOR)
    assert next_wait(five, 0) == five
    low, high = (lambda a, b: a), (lambda a, b: b)
    assert next_wait(five, 1, low) == five
    assert next_wait(five, 1, high) == 2 * five
    assert next_wait(five, 3, high) == 8 * five
    assert next_wait(five, 30, high) == BACKOFF_CAP
    assert next_wait(five, 30, low) == BACKOFF_CAP / 2
    week = timedelta(days=7)
    assert next_wait(week, 5, high) == week  # never shorter than the interval
