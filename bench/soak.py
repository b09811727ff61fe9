"""Soak: many seeded fault-and-kill trials (`tests/faults/harness.py`), in parallel.

Each trial runs in its own child process, temporary folder and ports (both simulators on
port 0, bridge as grandchild processes), from its seed alone: the simulators on a sped-up
clock, N linked tickets, user actions, injected faults (429 storms, 503/500, drops, slow and
malformed answers, before and after the vendor acted, failed Zendesk jobs) and SIGKILLed
bridge runs; then clean runs and the invariants (convergence, no duplicate irreversible
operation, a consistent ledger, an idle sync that writes nothing).

Run:
  .venv/bin/python bench/soak.py [--trials 200] [--jobs N] [--first-seed 1] [--keep-failed DIR]
  .venv/bin/python bench/soak.py --seed S          # replay one trial, with its timeline
  .venv/bin/python bench/soak.py --seed S --control  # the same script, no faults, no kills

Prints a markdown table (trials, passed, failed, kills, faults fired, wall time), the
violations by kind, and each failing seed with its violations and the command that
replays it. Exit status 1 when any trial failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _util import table

from tests.faults.harness import TrialOptions, TrialResult, Violation, run_trial

ROOT = Path(__file__).resolve().parent.parent
#: a trial still running after this long is killed (with its bridge children)
TRIAL_TIMEOUT = 900.0


def _trial_in_child(seed: int, keep: Path | None, control: bool) -> TrialResult:
    """Run one trial as `python bench/soak.py --seed S --json` in its own session (so that
    a hung trial can be ended with everything it started); parse its JSON result."""
    command = [sys.executable, str(Path(__file__).resolve()), "--seed", str(seed), "--json"]
    if keep is not None:
        command += ["--keep", str(keep / f"seed-{seed}")]
    if control:
        command.append("--control")
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=TRIAL_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the trial's own session
        stdout, stderr = process.communicate()
        return _broken(seed, f"trial did not finish in {TRIAL_TIMEOUT:.0f}s", stderr, started)
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        return _broken(seed, f"trial exited {process.returncode} without a result", stderr, started)
    return TrialResult.from_dict(json.loads(lines[-1]))


def _broken(seed: int, why: str, stderr: str, started: float) -> TrialResult:
    result = TrialResult(seed=seed, wall_seconds=time.monotonic() - started)
    result.violations.append(Violation("harness_error", why, 1, (stderr[-500:],)))
    return result


def soak(
    seeds: list[int], jobs: int, keep: Path | None, control: bool = False
) -> tuple[list[TrialResult], float]:
    started = time.monotonic()
    results: list[TrialResult] = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(_trial_in_child, s, keep, control): s for s in seeds}
        for done, future in enumerate(as_completed(futures), 1):
            result = future.result()
            results.append(result)
            verdict = "pass" if result.passed else "FAIL " + ", ".join(sorted(result.kinds()))
            print(
                f"[{done}/{len(seeds)}] seed {result.seed}: {verdict} "
                f"({result.kills} kills, {result.faults_fired} faults, "
                f"{result.wall_seconds:.0f}s)",
                file=sys.stderr,
                flush=True,
            )
    return sorted(results, key=lambda r: r.seed), time.monotonic() - started


def print_summary(results: list[TrialResult], wall: float, jobs: int) -> None:
    failed = [r for r in results if not r.passed]
    mean = sum(r.wall_seconds for r in results) / max(1, len(results))
    print(
        table(
            ["trials", "passed", "failed", "kills", "faults fired", "wall s", "mean trial s"],
            [
                [
                    len(results),
                    len(results) - len(failed),
                    len(failed),
                    sum(r.kills for r in results),
                    sum(r.faults_fired for r in results),
                    f"{wall:.0f} ({jobs} jobs)",
                    f"{mean:.1f}",
                ]
            ],
        )
    )
    fired: Counter[str] = Counter()
    for result in results:
        fired.update(result.fired_by_family())
    print()
    print("faults fired by kind: " + ", ".join(f"{k} {n}" for k, n in fired.most_common()))
    if not failed:
        return
    trials: Counter[str] = Counter()
    occurrences: Counter[str] = Counter()
    seeds: dict[str, list[int]] = {}
    for result in failed:
        for kind, count in result.kinds().items():
            trials[kind] += 1
            occurrences[kind] += count
            seeds.setdefault(kind, []).append(result.seed)
    print()
    print(
        table(
            ["violation", "trials", "occurrences", "seeds"],
            [
                [kind, trials[kind], occurrences[kind], " ".join(map(str, seeds[kind][:12]))]
                for kind in sorted(trials, key=lambda k: (-trials[k], k))
            ],
        )
    )
    print()
    for result in failed:
        print(result.report())
        print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--seed", type=int, help="run this one trial here and print it")
    parser.add_argument("--json", action="store_true", help="with --seed: print JSON")
    parser.add_argument("--keep", type=Path, help="with --seed: run in this folder, keep it")
    parser.add_argument("--keep-failed", type=Path, help="keep failing trials' folders here")
    parser.add_argument("--control", action="store_true", help="no faults and no kills")
    args = parser.parse_args(argv)
    options = TrialOptions.control() if args.control else None
    if args.seed is not None:
        result = run_trial(args.seed, args.keep, keep=args.keep is not None, options=options)
        if args.json:
            print(json.dumps(result.to_dict()))
        else:
            print(result.report(verbose=True))
        return 0 if result.passed else 1
    seeds = list(range(args.first_seed, args.first_seed + args.trials))
    keep = args.keep_failed
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    results, wall = soak(seeds, max(1, args.jobs), keep, args.control)
    if keep is not None:  # keep only the failing trials' folders
        for result in results:
            folder = keep / f"seed-{result.seed}"
            if result.passed and folder.exists():
                shutil.rmtree(folder, ignore_errors=True)
    print_summary(results, wall, max(1, args.jobs))
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
