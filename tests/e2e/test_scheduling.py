"""The scheduling examples in docs/scheduling/ are valid and run a real `bridge sync`."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "scheduling"
DOC = ROOT / "docs" / "scheduling.md"

_CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")
_CRON_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def _check_cron_schedule(fields: list[str]) -> None:
    assert len(fields) == 5
    for text, (low, high) in zip(fields, _CRON_RANGES, strict=True):
        assert _CRON_FIELD.match(text), text
        for number in re.findall(r"\d+", text.split("/")[0]):
            assert low <= int(number) <= high, text


def _bridge_args(argv: list[str]) -> list[str]:
    """The arguments after the `bridge` executable, up to any shell redirection."""
    names = {"bridge", "ticket-bridge", "bridge-sync-alert"}
    start = next(i for i, word in enumerate(argv) if Path(word).name in names) + 1
    args: list[str] = []
    for word in argv[start:]:
        if word.startswith((">", "2>", "|", "<")):
            break
        args.append(word)
    return args


def _parses(args: list[str]) -> None:
    """The command line is one `bridge sync` the CLI accepts (checked with --help)."""
    assert "sync" in args
    assert args[-1] == "sync" or args[args.index("sync") + 1].startswith("-")
    result = subprocess.run(
        [sys.executable, "-m", "bridge", *args, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "One reconciliation run" in result.stdout


def test_the_doc_includes_every_example_verbatim() -> None:
    doc = DOC.read_text(encoding="utf-8")
    files = sorted(EXAMPLES.iterdir())
    assert [f.name for f in files] == [
        "bridge-sync-alert",
        "bridge-sync-cronjob.yaml",
        "bridge-sync.service",
        "bridge-sync.timer",
        "bridge.cron",
    ]
    for path in files:
        assert path.read_text(encoding="utf-8") in doc, path.name


def test_the_crontab_line_runs_bridge_sync_every_5_minutes() -> None:
    lines = [
        line
        for line in (EXAMPLES / "bridge.cron").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    env = [line for line in lines if re.match(r"^[A-Z_]+=", line)]
    jobs = [line for line in lines if line not in env]
    assert "BRIDGE_CONFIG=/etc/bridge/bridge.toml" in env
    assert any(line.startswith("MAILTO=") for line in env)
    assert len(jobs) == 1
    words = shlex.split(jobs[0])
    _check_cron_schedule(words[:5])
    assert words[:5] == ["*/5", "*", "*", "*", "*"]
    assert words[5] == "bridge"  # /etc/cron.d: the user field
    _parses(_bridge_args(words[6:]))


def _unit(path: Path) -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    current = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = {}
            continue
        key, _, value = line.partition("=")
        sections[current][key] = value
    return sections


def test_the_systemd_units_are_a_oneshot_sync_and_a_5_minute_timer(tmp_path: Path) -> None:
    service = _unit(EXAMPLES / "bridge-sync.service")
    timer = _unit(EXAMPLES / "bridge-sync.timer")
    assert service["Service"]["Type"] == "oneshot"
    assert service["Service"]["SuccessExitStatus"].split() == ["1", "3"]
    assert service["Service"]["Environment"] == "BRIDGE_CONFIG=/etc/bridge/bridge.toml"
    _parses(_bridge_args(shlex.split(service["Service"]["ExecStart"])))
    assert timer["Timer"]["OnCalendar"] == "*:0/5"
    assert timer["Timer"]["Unit"] == "bridge-sync.service"
    assert timer["Install"]["WantedBy"] == "timers.target"
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: keys checked above only")
    bridge = Path(sys.executable).with_name("ticket-bridge")
    for name in ("bridge-sync.service", "bridge-sync.timer"):
        text = (EXAMPLES / name).read_text(encoding="utf-8")
        (tmp_path / name).write_text(
            text.replace("/opt/bridge/.venv/bin/ticket-bridge", str(bridge))
        )
    verify = subprocess.run(
        [
            analyze,
            "verify",
            str(tmp_path / "bridge-sync.service"),
            str(tmp_path / "bridge-sync.timer"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr
    problems = [
        line
        for line in (verify.stdout + verify.stderr).splitlines()
        if any(word in line for word in ("Unknown", "Failed", "Invalid", "ignoring"))
    ]
    assert problems == []
    calendar = subprocess.run(
        [analyze, "calendar", "*:0/5"], capture_output=True, text=True, timeout=60, check=False
    )
    assert calendar.returncode == 0
    assert "*-*-* *:00/5:00" in calendar.stdout


def test_the_kubernetes_cronjob_forbids_overlap_and_runs_bridge_sync() -> None:
    manifest = yaml.safe_load((EXAMPLES / "bridge-sync-cronjob.yaml").read_text(encoding="utf-8"))
    assert (manifest["apiVersion"], manifest["kind"]) == ("batch/v1", "CronJob")
    spec = manifest["spec"]
    _check_cron_schedule(spec["schedule"].split())
    assert spec["schedule"] == "*/5 * * * *"
    assert spec["concurrencyPolicy"] == "Forbid"
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["terminationGracePeriodSeconds"] >= 60
    (container,) = pod["containers"]
    assert container["command"] == ["/opt/bridge/bridge-sync-alert"]
    _parses(container["args"])
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"] for v in pod["volumes"]}
    assert set(mounts) == volumes
    config_dir = container["args"][container["args"].index("--config") + 1].rsplit("/", 1)[0]
    assert mounts["config"] == config_dir
