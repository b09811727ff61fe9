"""Benchmark: the command line against a tenant whose tickets all changed in one second.

What a bulk import, a migration or a mass delete leaves behind: N tickets a side whose last
change shares one second. For each N this starts `bridge sandbox serve` (both simulators,
one clock, in a child process), switches its rate limits off, freezes its clock while
seeding N tickets on each side (so that they share a second), lets the clock run again,
imports the N links with `bridge link import`, and then times, each as its own `bridge`
process:

* the **first `bridge sync`** (every link observed for the first time), and
* the **next, idle `bridge sync`** (nothing changed since).

For each run: the calls both simulators answered (their counters), wall time, bridge's own
CPU and peak RSS (the `bridge sync` process, measured as its own process tree: started from
this one, it would report this process's memory), and the simulators' CPU (the sandbox
process's CPU time over the run, from /proc). Rate limits are off on both sides,
and the SuperOffice client's own pacing with them (`requests_per_second` at its maximum).
With limits off the simulators' rate-limit headers say so (before, they still counted the
export down to `remaining=0`, which bridge obeys, in real time here: most of the issue's
534 s at 100,000 links). What is left is bridge's and the simulators' own cost. Every run
must converge (exit 0).

Run: `.venv/bin/python bench/cli_scale.py [N ...]` (default: 10000 30000 100000; the CI
smoke size is 300; `--bytecode`: the commands as an installed bridge runs them, bytecode
cached). Prints a markdown table, then the growth exponent of each run's cost
between consecutive sizes. Targets (issue 16): first sync < 8 s at 100,000 links; the idle
run after it ≤ 8 calls and < 1 s.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import exponent, measure_child, table

#: the SuperOffice client's pacing with the sandbox's limits off (the setting's maximum)
UNPACED = 10_000
#: how long a step may take before the benchmark gives up on it, in seconds
STEP_TIMEOUT = 3600.0
_CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def bridge_command() -> list[str]:
    """The `bridge` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("bridge")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bridge"]


def bytecode_env() -> dict[str, str]:
    """This environment as an installed bridge runs in: its modules' bytecode cached, in a
    folder of its own outside the tree (`PYTHONPYCACHEPREFIX`; `PYTHONDONTWRITEBYTECODE`
    removed), compiled before anything is timed (compileall skips what is up to date). A
    machine that sets `PYTHONDONTWRITEBYTECODE` otherwise makes every command compile
    bridge from source (0.1 to 0.3 s of each command's CPU), which a wheel never does."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "bridge-bench-pycache")
    import bridge  # where this environment's bridge is, and its libraries beside it

    folders = {str(Path(bridge.__file__).parent), *(p for p in sys.path if p.endswith("-packages"))}
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", *sorted(folders)], env=env, check=True
    )
    return env


def process_cpu(pid: int) -> float:
    """User + system CPU seconds a live process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICK


@dataclass
class Run:
    """One `bridge` process, measured."""

    name: str
    calls: int
    wall: float
    bridge_cpu: float
    sim_cpu: float
    peak_mb: float
    exit_code: int
    summary: dict[str, Any]


class SandboxServer:
    """`bridge sandbox serve` in a child process, with its admin API at hand."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.config_path = folder / "bridge.toml"
        self._process: subprocess.Popen[str] | None = None
        self._session = requests.Session()
        self.admin: dict[str, str] = {}

    def start(self) -> None:
        command = [*bridge_command(), "sandbox", "serve", "--zendesk-port", "0"]
        command += ["--superoffice-port", "0", "--write-config", str(self.folder)]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self._process = process
        assert process.stdout is not None
        for line in process.stdout:  # the config is written once both listen
            if line.startswith("Wrote "):
                break
        else:
            raise RuntimeError(f"bridge sandbox serve exited ({process.wait()})")
        text = self.config_path.read_text(encoding="utf-8")
        for side in ("zendesk", "superoffice"):
            section = text.split(f"[{side}]", 1)[1]
            found = re.search(r'base_url = "([^"]+)"', section)
            assert found is not None, f"no {side} base_url in {self.config_path}"
            parts = urlsplit(found.group(1))
            self.admin[side] = f"{parts.scheme}://{parts.netloc}/_sandbox"

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def call(self, side: str, method: str, path: str, body: Any = None) -> Any:
        response = self._session.request(
            method, f"{self.admin[side]}/{path}", json=body, timeout=STEP_TIMEOUT
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def calls(self) -> int:
        """Requests both simulators answered since their counters were last reset."""
        return sum(self.call(side, "GET", "counters")["total"] for side in self.admin)

    def reset_counters(self) -> None:
        for side in self.admin:
            self.call(side, "DELETE", "counters")

    def stop(self) -> None:
        """Interrupt it as Ctrl-C would; terminate, then kill it, if it lingers."""
        self._session.close()
        process = self._process
        if process is None or process.poll() is not None:
            return
        for stop in (lambda: process.send_signal(signal.SIGINT), process.terminate, process.kill):
            stop()
            try:
                process.wait(10)
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def seed_same_second(server: SandboxServer, links: int) -> list[tuple[int, int]]:
    """N tickets a side, every one last changed in the same second (the shared clock is
    frozen while seeding, then runs on); rate limits off, the client's pacing too."""
    server.call("zendesk", "POST", "clock", {"freeze": True})
    server.call("zendesk", "POST", "config", {"rate_limits": False})
    server.call("superoffice", "POST", "config", {"requests_per_second": None})
    so = server.call("superoffice", "POST", "seed", {"count": links, "title": "Ticket {n}"})
    zd = server.call("zendesk", "POST", "seed", {"count": links, "template": {"subject": "T {n}"}})
    server.call("zendesk", "POST", "clock", {"freeze": False})
    text = server.config_path.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^requests_per_second = .*$", f"requests_per_second = {UNPACED}", text)
    server.config_path.write_text(text, encoding="utf-8")
    return list(zip(so["ids"], zd["ids"], strict=True))


def run_bridge(
    server: SandboxServer,
    name: str,
    *args: str,
    profile: Path | None = None,
    env: dict[str, str] | None = None,
) -> Run:
    """One `bridge` command against the sandbox, measured (exit code kept, not checked).
    Its CPU and peak RSS are its own (`measure_child`: not this process's memory). With
    `profile`, it runs under py-spy, which writes its samples there (collapsed stacks):
    its figures are then py-spy's too. `env`: its environment (`bytecode_env`)."""
    server.reset_counters()
    sim_cpu = process_cpu(server.pid)
    command = [*bridge_command(), "--config", str(server.config_path), *args]
    if profile is not None:
        spy = Path(sys.executable).with_name("py-spy")
        command = [str(spy), "record", "-f", "raw", "-r", "200", "-o", str(profile), "--", *command]
    with tempfile.TemporaryFile() as out:
        usage = measure_child(command, stdout=out, env=env)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    summary: dict[str, Any] = {}
    if "--json" in args:
        try:
            summary = json.loads(text)
        except ValueError:
            summary = {"unreadable": text[-500:]}
    return Run(
        name=name,
        calls=server.calls(),
        wall=usage.wall,
        bridge_cpu=usage.cpu,
        sim_cpu=process_cpu(server.pid) - sim_cpu,
        peak_mb=usage.peak_mb,
        exit_code=usage.exit_code,
        summary=summary,
    )


def one(
    links: int,
    *,
    gap: float = 0.0,
    profile: Path | None = None,
    env: dict[str, str] | None = None,
) -> list[Run]:
    """Seed, import, then the first and the idle sync at one size; with a `gap`, a second
    idle sync that many seconds later (a scheduled run: the seconds still open to the
    first two runs, `change_overlap`, are closed by then and not read again). `env`: the
    bridge commands' environment."""
    with tempfile.TemporaryDirectory() as folder, SandboxServer(Path(folder)) as server:
        pairs = seed_same_second(server, links)
        csv_path = Path(folder) / "links.csv"
        with csv_path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["superoffice_id", "zendesk_id"])
            writer.writerows(pairs)
        imported = run_bridge(server, "link import", "link", "import", str(csv_path), env=env)
        if imported.exit_code:
            raise RuntimeError(f"bridge link import failed ({imported.exit_code})")
        first = run_bridge(server, "first sync", "sync", "--json", profile=profile, env=env)
        idle = run_bridge(server, "idle sync", "sync", "--json", env=env)
        if not gap:
            return [first, idle]
        time.sleep(gap)
        later = run_bridge(server, f"idle sync {gap:.0f} s later", "sync", "--json", env=env)
        return [first, idle, later]


def _outcome(run: Run) -> str:
    return str(run.summary.get("outcome", f"exit {run.exit_code}"))


def report(results: list[tuple[int, list[Run]]]) -> str:
    headers = ["links", "run", "calls", "wall s", "bridge CPU s", "simulators CPU s"]
    headers += ["bridge peak RSS MB", "outcome"]
    rows = [
        [
            f"{links:,}",
            run.name,
            f"{run.calls:,}",
            f"{run.wall:.2f}",
            f"{run.bridge_cpu:.2f}",
            f"{run.sim_cpu:.2f}",
            f"{run.peak_mb:.0f}",
            _outcome(run),
        ]
        for links, runs in results
        for run in runs
    ]
    out = [table(headers, rows)]
    if len(results) > 1:
        growth: list[list[object]] = []
        for (n1, small), (n2, large) in itertools.pairwise(results):
            for a, b in zip(small, large, strict=True):
                points = [
                    exponent((n1, getattr(a, key)), (n2, getattr(b, key)))
                    for key in ("calls", "wall", "bridge_cpu", "sim_cpu")
                ]
                growth.append(
                    [
                        a.name,
                        f"{n1:,} → {n2:,}",
                        *("-" if k is None else f"{k:.2f}" for k in points),
                    ]
                )
        headers = ["run", "sizes", "k calls", "k wall", "k bridge CPU", "k simulators CPU"]
        out += ["", "Growth exponent k (cost ∝ links^k):", "", table(headers, growth)]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[10_000, 30_000, 100_000])
    parser.add_argument(
        "--gap",
        type=float,
        default=0.0,
        help="also time an idle sync this many seconds after the first two (e.g. 65: past "
        "SuperOffice's one-minute change overlap, as a scheduled run would be)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="record the (last size's) first sync with py-spy into this file (collapsed "
        "stacks, for flamegraph tools); its figures then include py-spy's overhead",
    )
    parser.add_argument(
        "--bytecode",
        action="store_true",
        help="run bridge's commands with their bytecode cached, as an installed package "
        "runs (PYTHONPYCACHEPREFIX in the temp folder, PYTHONDONTWRITEBYTECODE removed); "
        "default: as this environment says",
    )
    args = parser.parse_args()
    env = bytecode_env() if args.bytecode else None
    results: list[tuple[int, list[Run]]] = []
    for links in sorted(args.sizes):
        runs = one(links, gap=args.gap, profile=args.profile, env=env)
        print(
            f"  {links:,} links: " + ", ".join(f"{r.name} {r.wall:.1f} s" for r in runs),
            file=sys.stderr,
        )
        results.append((links, runs))
    cached = ", bytecode cached" if args.bytecode else ""
    print(f"command line, every ticket changed in the same second, rate limits off{cached}\n")
    print(report(results))
    failed = [(n, r.name) for n, runs in results for r in runs if r.exit_code]
    if failed:
        sys.exit(f"runs that did not converge: {failed}")


if __name__ == "__main__":
    main()
