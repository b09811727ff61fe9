"""Seeded fault-and-kill trials: real `bridge` child processes against both simulators.

A trial, given an integer seed, draws its whole script from `random.Random(seed)`:

1. both simulators on one clock running `SPEED` times real time and started
   `START_BEHIND` in the past (bridge in a child process runs on the wall clock, so the
   simulators' clock can be moved 15 days on, making SuperOffice's retention job run,
   without getting ahead of bridge's); a bridge config (lease 2 s, no purge cap, retention
   purges propagated, a seeded conflict policy) and N linked tickets (60-150);
2. a scenario of phases: user actions on both sides (soft deletes, restores, Zendesk
   purges by an agent, the clock moved past SuperOffice's retention period), fault rules
   in both simulators (429 storms with `Retry-After`, 503, 500, dropped connections,
   slow and malformed answers, before and after the vendor acted, failed Zendesk jobs),
   and `bridge sync` / `bridge migrate --from zendesk --to superoffice --include-purges`
   child runs, some killed with SIGKILL after a seeded delay or at a crash point
   (`BRIDGE_CRASH_AT`), some with user actions landing while they run; then top-ups
   until at least `MIN_FAULTS` faults fired and `MIN_KILLS` runs were killed;
3. faults cleared, Zendesk jobs finished, clean syncs until one exits 0 (or the
   attention it reports is all that is left, or `SETTLE_RUNS` runs);
4. checks against the simulators' ground truth (`Trial.check`), then one more clean
   sync, which must exit 0 (4 only with the attention it reports) and write nothing.

What the seed does not fix is timing: where a timer kill lands, the child's backoff
jitter, which requests a probabilistic fault hits, and so what bridge managed to do
between two steps. A seed replays the same script, not the same interleaving; user
actions pick links by index, so they are the same actions (each applies to the tickets it
can apply to at that moment).

Violation kinds (empty list: the trial passed):

* `diverged_silently`: a link's tickets differ in the simulators, and the ledger has no
  attention and no planned or sent operation for it, so no run will act on it (bridge
  believes it is done, or waits on a `held`/`pending_retention` one that cannot settle it;
  the one accepted difference: SuperOffice soft-deleted and Zendesk purged while the
  SuperOffice purge waits for the tenant's retention job, `pending_retention`);
* `diverged_with_open_op`: they differ and an operation for the link is still planned or
  sent after the clean runs (reported as pending, never finished);
* `attention_not_reported`: links the ledger marks for attention that `bridge status
  --json` does not show;
* `duplicate_purge`: a purge request the vendor accepted for a ticket already purged or
  already in a purge job under way (from the simulators' purge logs);
* `repeated_purge`: a ticket with more than one accepted purge request (failed jobs aside);
* `purge_of_live_ticket`: an accepted purge request that named a ticket active at the time;
* `open_op_unreported` / `open_op_stuck`: operations left `planned` or `sent` after the
  clean runs, when the last one exited 0 (unreported) or not (reported, but never settled);
* `run_left_running`: a run still `running` in the ledger after the final sync;
* `final_sync_exit`, `final_sync_wrote`: the final clean sync's exit code or writes;
* `child_hung`: a child did not exit within `CHILD_TIMEOUT` (it was killed);
* `status_failed`: `bridge status --json` failed or printed no JSON;
* `harness_error`: the harness itself failed (a bug here, not in bridge).

Run one trial::

    from tests.faults.harness import run_trial
    result = run_trial(7)            # TrialResult; result.passed, result.violations
    print(result.report())

    python -m tests.faults.harness --seed 7 [--keep DIR] [--json] [--verbose]
    python bench/soak.py --seed 7

The ledger is the config's SQLite file unless `run_trial(..., ledger_url=...)` names
another (an empty PostgreSQL database: `tests/faults/test_fault_trials.py` runs trials on
both); the harness reads it through SQLAlchemy, with SQL both backends take.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import RowMapping, text

from bridge.sandbox import FaultInjector, FaultRule, SimulatorBase
from bridge.sandbox_pair import Sandbox
from bridge.vendors.zendesk.settings import ZendeskSettings
from tests.sandbox_world import DAY, SandboxWorld, running_sandbox

__all__ = [
    "MIN_FAULTS",
    "MIN_KILLS",
    "ChildRun",
    "InjectedFault",
    "Trial",
    "TrialOptions",
    "TrialResult",
    "Violation",
    "main",
    "replay_command",
    "run_trial",
]

#: simulated seconds per real second (a 100-ticket Zendesk job takes about 0.25 s)
SPEED = 50.0
#: how far in the past the simulators' clock starts (room for `MAX_ADVANCES` jumps)
START_BEHIND = timedelta(days=50)
#: jumps of the clock past SuperOffice's retention period (14 days) in one trial
MAX_ADVANCES = 2
ADVANCE = 15 * DAY
#: the config's lease is 2 s: after a kill, wait it out before the next run
LEASE_WAIT = 2.2
#: a child still running after this long is hung (it is killed and reported)
CHILD_TIMEOUT = 120.0
SETTLE_RUNS = 6
#: bridge waits `zendesk.outcome_wait_seconds` (900 s by default, wall time) before it
#: resends a purge whose answer was lost: long enough for any job the vendor may have
#: queued to end. Simulated jobs end within 0.3 s here, so 5 s keeps the same margin on
#: the trial's time scale (set only when this bridge has the setting)
OUTCOME_WAIT = 5
MIN_KILLS = 3
MIN_FAULTS = 20
CRASH_POINTS = ("before_mark_sent", "before_send", "after_send")
AGENT = (7, "Ann")
MIGRATE = ("migrate", "--from", "zendesk", "--to", "superoffice", "--include-purges")
CONFLICT_POLICIES = ("manual", "manual", "latest-wins", "keep-active", "superoffice-wins")

# the routes bridge uses, by simulator (checked against the simulators' routes)
ZD_PURGE = "DELETE deleted_tickets/destroy_many"
ZD_READS = (
    "GET incremental/tickets/cursor",
    "GET tickets/show_many",
    "GET deleted_tickets",
    "GET job_statuses/show_many",
)
ZD_WRITES = ("DELETE tickets/destroy_many", "PUT deleted_tickets/restore_many", ZD_PURGE)
ZD_JOB_ROUTES = ("DELETE tickets/destroy_many", ZD_PURGE)
SO_READS = ("GET Archive/{provider}", "GET Ticket/{id}")
SO_WRITES = (
    "POST Agents/Ticket/SetDeletedStatusByIds",
    "POST Agents/Ticket/UndeleteByIds",
    "PATCH Ticket/{id}",
)
READS = {"zendesk": ZD_READS, "superoffice": SO_READS}
WRITES = {"zendesk": ZD_WRITES, "superoffice": SO_WRITES}
#: POST routes that only read: not writes for the "an idle sync writes nothing" check
READ_ONLY_POSTS = frozenset(
    {
        "POST Archive/{provider}",
        "POST Agents/Sentry/HasFunctionRight",
        "POST Login/PartnerSystemUser/Authenticate",
    }
)
#: (kind, status, when) of the faults aimed at Zendesk's bulk purge
PURGE_FAULTS: tuple[tuple[str, int | None, str], ...] = (
    ("status", 503, "after"),
    ("status", 500, "after"),
    ("malformed", None, "after"),
    ("drop", None, "after"),
    ("status", 503, "before"),
    ("drop", None, "before"),
    ("status", 429, "before"),
)
OPEN_STATUSES = ("planned", "sent")


def is_write(route: str) -> bool:
    """Whether a simulator route name is a write (non-GET, read-only POSTs aside)."""
    method = route.split(" ", 1)[0]
    return method not in ("GET", "HEAD", "OPTIONS") and route not in READ_ONLY_POSTS


def replay_command(seed: int) -> str:
    return f"python bench/soak.py --seed {seed}"


# --------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class Violation:
    """One broken invariant (`count` occurrences; `examples` name some of them)."""

    kind: str
    detail: str
    count: int = 1
    examples: tuple[str, ...] = ()

    def __str__(self) -> str:
        more = f" (e.g. {'; '.join(self.examples)})" if self.examples else ""
        return f"{self.kind} x{self.count}: {self.detail}{more}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "detail": self.detail,
            "count": self.count,
            "examples": list(self.examples),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Violation:
        return cls(data["kind"], data["detail"], data["count"], tuple(data["examples"]))


@dataclass
class ChildRun:
    """One `python -m bridge ...` child process and how it ended."""

    number: int
    phase: str
    args: tuple[str, ...]
    crash_at: str | None = None
    kill_after: float | None = None
    returncode: int | None = None
    seconds: float = 0.0
    timed_out: bool = False
    stderr_tail: str = ""

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL and not self.timed_out

    def describe(self) -> str:
        how = ""
        if self.crash_at:
            how = f" BRIDGE_CRASH_AT={self.crash_at}"
        elif self.kill_after is not None:
            how = f" kill after {self.kill_after:.2f}s"
        return (
            f"run {self.number} [{self.phase}] {' '.join(self.args)}{how} -> "
            f"{self.returncode}{' (killed)' if self.killed else ''}"
            f"{' (hung)' if self.timed_out else ''} in {self.seconds:.1f}s"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "phase": self.phase,
            "args": list(self.args),
            "crash_at": self.crash_at,
            "kill_after": self.kill_after,
            "returncode": self.returncode,
            "seconds": round(self.seconds, 3),
            "timed_out": self.timed_out,
            "killed": self.killed,
        }


@dataclass
class InjectedFault:
    """A fault rule installed in one simulator (its `fired` count is the simulator's)."""

    side: str
    phase: str
    rule: FaultRule

    @property
    def fired(self) -> int:
        return self.rule.fired

    @property
    def family(self) -> str:
        rule = self.rule
        if rule.kind == "status":
            return f"{rule.status} {rule.when}"
        if rule.kind in ("drop", "slow"):
            return f"{rule.kind} {rule.when}"
        return rule.kind

    def describe(self) -> str:
        rule = self.rule
        where = rule.route or "any route"
        extra = []
        if rule.retry_after is not None:
            extra.append(f"retry_after={rule.retry_after:g}")
        if rule.kind == "slow":
            extra.append(f"delay={rule.delay:g}")
        if rule.probability is not None:
            extra.append(f"p={rule.probability:g}")
        return f"{self.side} {self.family} on {where} {' '.join(extra)} fired {rule.fired}".strip()


@dataclass
class TrialResult:
    """What a trial did and which invariants it broke (`violations` empty: passed)."""

    seed: int
    links: int = 0
    conflict_policy: str = ""
    violations: list[Violation] = field(default_factory=list)
    runs: list[ChildRun] = field(default_factory=list)
    faults: list[InjectedFault] = field(default_factory=list)
    timeline: list[str] = field(default_factory=list)
    purge_requests: dict[str, int] = field(default_factory=dict)
    wall_seconds: float = 0.0
    folder: str | None = None
    #: the fault rules that fired, described (kept when the rules themselves are not)
    fired_faults: list[str] = field(default_factory=list)
    # filled by `from_dict` for results that crossed a process boundary
    _kills: int | None = None
    _fired: int | None = None
    _fired_by_family: dict[str, int] | None = None

    @property
    def passed(self) -> bool:
        return not self.violations

    @property
    def kills(self) -> int:
        if self._kills is not None:
            return self._kills
        return sum(1 for run in self.runs if run.killed)

    @property
    def faults_fired(self) -> int:
        if self._fired is not None:
            return self._fired
        return sum(f.fired for f in self.faults)

    def fired_by_family(self) -> Counter[str]:
        if self._fired_by_family is not None:
            return Counter(self._fired_by_family)
        counts: Counter[str] = Counter()
        for fault in self.faults:
            counts[fault.family] += fault.fired
        return +counts

    def fired_descriptions(self) -> list[str]:
        if not self.faults:
            return list(self.fired_faults)
        return [f"{f.phase}: {f.describe()}" for f in self.faults if f.fired]

    def kinds(self) -> Counter[str]:
        """Violations by kind (with their counts)."""
        counts: Counter[str] = Counter()
        for violation in self.violations:
            counts[violation.kind] += violation.count
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "passed": self.passed,
            "links": self.links,
            "conflict_policy": self.conflict_policy,
            "kills": self.kills,
            "faults_fired": self.faults_fired,
            "fired_by_family": dict(self.fired_by_family()),
            "purge_requests": self.purge_requests,
            "wall_seconds": round(self.wall_seconds, 2),
            "violations": [v.to_dict() for v in self.violations],
            "runs": [r.to_dict() for r in self.runs],
            "faults": self.fired_descriptions(),
            "timeline": self.timeline,
            "folder": self.folder,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialResult:
        result = cls(
            seed=int(data["seed"]),
            links=int(data.get("links", 0)),
            conflict_policy=str(data.get("conflict_policy", "")),
            violations=[Violation.from_dict(v) for v in data.get("violations", [])],
            timeline=list(data.get("timeline", [])),
            purge_requests=dict(data.get("purge_requests", {})),
            wall_seconds=float(data.get("wall_seconds", 0.0)),
            folder=data.get("folder"),
            fired_faults=list(data.get("faults", [])),
        )
        result.runs = [
            ChildRun(
                number=r["number"],
                phase=r["phase"],
                args=tuple(r["args"]),
                crash_at=r["crash_at"],
                kill_after=r["kill_after"],
                returncode=r["returncode"],
                seconds=r["seconds"],
                timed_out=r["timed_out"],
            )
            for r in data.get("runs", [])
        ]
        result._kills = int(data.get("kills", 0))
        result._fired = int(data.get("faults_fired", 0))
        result._fired_by_family = dict(data.get("fired_by_family", {}))
        return result

    def report(self, *, verbose: bool = False) -> str:
        head = (
            f"seed {self.seed}: {'PASS' if self.passed else 'FAIL'} - {self.links} links, "
            f"policy {self.conflict_policy}, {len(self.runs)} runs, {self.kills} kills, "
            f"{self.faults_fired} faults fired, purge requests {self.purge_requests}, "
            f"{self.wall_seconds:.1f}s"
        )
        lines = [head]
        lines += [f"  VIOLATION {v}" for v in self.violations]
        if not self.passed:
            lines.append(f"  replay: {replay_command(self.seed)}")
        if verbose:
            lines.append("  faults fired: " + json.dumps(dict(self.fired_by_family())))
            lines += [f"    {line}" for line in self.fired_descriptions()]
            lines += [f"  {line}" for line in self.timeline]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# the trial


@dataclass(frozen=True)
class TrialOptions:
    """Knobs of a trial. `faults=False, kills=False` is the control: the same scenario
    with no fault and no kill, which must pass whenever bridge works at all (a violation
    there points at the harness or at bridge's fault-free behaviour)."""

    links: tuple[int, int] = (60, 150)
    phases: tuple[int, int] = (4, 5)
    faults: bool = True
    kills: bool = True
    min_kills: int = MIN_KILLS
    min_faults: int = MIN_FAULTS
    settle_runs: int = SETTLE_RUNS
    speed: float = SPEED

    @classmethod
    def control(cls) -> TrialOptions:
        return cls(faults=False, kills=False, min_kills=0, min_faults=0)


class _World(SandboxWorld):
    #: the simulators' limits are off: let bridge's own SuperOffice throttle run fast too
    client_rps = 500

    def rewrite_config(self, **sync: str) -> None:
        """The sandbox config, with bridge's wall-clock waits that have a setting scaled
        to the trial's time (see `OUTCOME_WAIT`)."""
        super().rewrite_config(**sync)
        if "outcome_wait_seconds" in {f.name for f in dataclasses.fields(ZendeskSettings)}:
            text = self.config_path.read_text(encoding="utf-8")
            line = "job_limit = 30\n"
            assert line in text, "the sandbox config's [zendesk] table changed"
            text = text.replace(line, f"{line}outcome_wait_seconds = {OUTCOME_WAIT}\n", 1)
            self.config_path.write_text(text, encoding="utf-8")


class Trial:
    """One seeded trial in `folder` (see the module docstring); `run()` returns the result."""

    def __init__(
        self,
        seed: int,
        folder: Path,
        options: TrialOptions | None = None,
        *,
        ledger_url: str | None = None,
    ) -> None:
        self.seed = seed
        self.folder = folder
        self.options = options or TrialOptions()
        #: the ledger's `[ledger] url` (None: the config's own SQLite file)
        self.ledger_url = ledger_url
        self.rng = random.Random(seed)
        self.result = TrialResult(seed=seed, folder=str(folder))
        self.started = time.monotonic()
        self.advances = 0
        self.pairs: list[tuple[int, int]] = []
        self._world: _World | None = None
        self._logs = folder / "logs"

    # ---- plumbing --------------------------------------------------------------------------

    @property
    def world(self) -> _World:
        assert self._world is not None
        return self._world

    def note(self, text: str) -> None:
        self.result.timeline.append(f"t+{time.monotonic() - self.started:5.1f}s {text}")

    def violate(
        self, kind: str, detail: str, examples: Iterable[str] = (), count: int | None = None
    ) -> None:
        shown = list(examples)
        self.result.violations.append(
            Violation(
                kind, detail, count if count is not None else max(1, len(shown)), tuple(shown[:8])
            )
        )

    def run(self) -> TrialResult:
        self._logs.mkdir(parents=True, exist_ok=True)
        start = datetime.now(UTC) - START_BEHIND
        try:
            with running_sandbox(self.options.speed, start=start) as sandbox:
                self._setup(sandbox)
                try:
                    self._scenario()
                    self._settle()
                    self.check()
                    self._final_sync()
                finally:
                    self.world.close()
        except Exception:
            self.violate(
                "harness_error",
                traceback.format_exc(limit=6).strip().splitlines()[-1],
                [traceback.format_exc(limit=6)],
            )
        self.result.wall_seconds = time.monotonic() - self.started
        with contextlib.suppress(OSError):
            text = json.dumps(self.result.to_dict(), indent=1)
            (self.folder / "result.json").write_text(text, encoding="utf-8")
        return self.result

    def _setup(self, sandbox: Sandbox) -> None:
        rng = self.rng
        for sim in (sandbox.zendesk, sandbox.superoffice):
            sim.faults = FaultInjector(rng.randrange(2**31))
            names = {r.name for r in sim.routes}
            side = "zendesk" if sim is sandbox.zendesk else "superoffice"
            missing = set(READS[side] + WRITES[side]) - names
            assert not missing, f"{side} simulator has no routes {sorted(missing)}"
        policy = rng.choice(CONFLICT_POLICIES)
        self.result.conflict_policy = policy
        self._world = _World(
            sandbox,
            self.folder / "bridge",
            ledger_url=self.ledger_url,
            lease_seconds="2",
            max_purges_per_run="100000",
            propagate_retention_purges="true",
            conflict_policy=f'"{policy}"',
        )
        count = rng.randint(*self.options.links)
        self.pairs = self.world.link(count)
        self.result.links = count
        self.note(f"{count} links, conflict policy {policy}")

    def sim(self, side: str) -> SimulatorBase:
        return self.world.zd if side == "zendesk" else self.world.so

    # ---- the scenario ----------------------------------------------------------------------

    def _scenario(self) -> None:
        rng = self.rng
        self.child(("sync",), phase="initial")
        phases = rng.randint(*self.options.phases)
        for number in range(1, phases + 1):
            phase = f"phase {number}"
            jumps = self.advances
            # at least one jump a trial: it is what makes bridge purge on Zendesk
            self.user_actions(phase, force_jump=number == (phases + 1) // 2 and not jumps)
            self.install_faults(phase, purging=self.advances > jumps)
            for _ in range(rng.randint(1, 2)):
                self.scripted_run(phase)
            time.sleep(rng.uniform(0.0, 0.4))
        self._top_up_faults()
        self._top_up_kills()

    def _pick(self, rng: random.Random, most: int) -> list[tuple[int, int]]:
        count = rng.randint(0, most)
        return [self.pairs[i] for i in rng.sample(range(len(self.pairs)), count)]

    def user_actions(
        self, phase: str, *, scale: float = 1.0, jump: bool = True, force_jump: bool = False
    ) -> None:
        """People at work on both sides (picked by link index, so the same actions on a
        replay; each applies to the tickets it can apply to now), and sometimes (`jump`)
        15 days passing first (see `jump_clock`)."""
        rng = random.Random(self.rng.random())  # the same draws, whatever applies
        world = self.world
        big, small = max(1, int(10 * scale)), max(1, int(5 * scale))
        so_delete = self._pick(rng, big)
        so_restore = self._pick(rng, small)
        zd_delete = self._pick(rng, big)
        zd_restore = self._pick(rng, small)
        zd_purge = self._pick(rng, 3) if rng.random() < 0.5 else []
        advance = rng.random() < 0.35 * scale or force_jump
        if advance and jump and self.advances < MAX_ADVANCES:
            self.jump_clock(phase)
        done = {
            "so delete": world.so.soft_delete([s for s, _ in so_delete]),
            "so restore": world.so.restore([s for s, _ in so_restore]),
            "zd delete": world.zd.agent_act("delete", [z for _, z in zd_delete], agent=AGENT)[
                "done"
            ],
            "zd restore": world.zd.agent_act("restore", [z for _, z in zd_restore], agent=AGENT)[
                "done"
            ],
        }
        # an agent purges from the deleted-tickets view: only soft-deleted tickets
        purgeable = [z for _, z in zd_purge if world.zd_state(z) == "deleted"]
        done["zd purge"] = world.zd.agent_act("purge", purgeable, agent=AGENT)["done"]
        text = ", ".join(f"{k} {len(v)}" for k, v in done.items() if v) or "nothing"
        self.note(f"{phase}: users: {text}")

    def jump_clock(self, phase: str) -> None:
        """15 days pass: SuperOffice's retention job purges what was soft-deleted before.

        In 15 real days bridge would have run many times, most of them cleanly, so one
        clean sync goes first: a soft delete that no run ever saw before its ticket
        vanished would model bridge being down for two weeks (only the periodic sweep,
        hours later, can find such a ticket), not the faults this harness is about."""
        self.clear_faults()
        self.child(("sync",), phase=f"{phase} (before the jump)")
        self.advances += 1
        self.world.clock.advance(ADVANCE)
        self.note(f"{phase}: clock +15 days, SuperOffice retention ran (jump {self.advances})")

    def install_faults(self, phase: str, *, purging: bool = False) -> None:
        """Replace the fault rules with a seeded set for this phase; when bridge is about
        to purge (`purging`: retention has just run), one of them is aimed at the purge."""
        self.clear_faults()
        rng = self.rng
        drawn = [random_fault(rng) for _ in range(rng.randint(4, 7))]
        if purging:
            drawn.append(random_fault(rng, family="purge"))
        if not self.options.faults:
            self.note(f"{phase}: faults: none (control)")
            return
        for side, fields in drawn:
            self.add_fault(side, phase, fields)
        installed = [
            f.describe().rsplit(" fired", 1)[0] for f in self.result.faults if f.phase == phase
        ]
        self.note(f"{phase}: faults: " + "; ".join(installed))

    def add_fault(self, side: str, phase: str, fields: dict[str, Any]) -> FaultRule:
        kind = fields.pop("kind")
        rule = self.sim(side).add_fault(kind, **fields)
        self.result.faults.append(InjectedFault(side, phase, rule))
        return rule

    def clear_faults(self) -> None:
        self.world.zd.clear_faults()
        self.world.so.clear_faults()

    def scripted_run(self, phase: str) -> ChildRun:
        rng = self.rng
        migrate = rng.random() < 0.2
        mode = rng.choices(("normal", "timer", "crash"), weights=(4, 3, 3))[0]
        kill_after = round(rng.uniform(0.4, 3.0), 2)
        crash_at = f"{rng.choice(CRASH_POINTS)}:{rng.randint(1, 2)}"
        mid_at = round(rng.uniform(0.3, 2.5), 2) if rng.random() < 0.3 else None
        args = MIGRATE if migrate else ("sync",)
        if not self.options.kills:
            mode = "normal"
        kwargs: dict[str, Any] = {
            "crash_at": crash_at if mode == "crash" else None,
            "kill_after": kill_after if mode == "timer" else None,
        }
        if mid_at is not None:
            kwargs["during"] = (
                mid_at,
                lambda: self.user_actions(f"{phase} (mid-run)", scale=0.5, jump=False),
            )
        run = self.child(args, phase=phase, **kwargs)
        if migrate and run.returncode == 2 and "--resume" in run.stderr_tail:
            kwargs.pop("during", None)
            run = self.child((*args, "--resume"), phase=phase, **kwargs)
        return run

    def _top_up_faults(self) -> None:
        """More faults on routes every run uses, until at least `min_faults` fired."""
        for attempt in range(1, 4):
            fired = self.result.faults_fired
            if fired >= self.options.min_faults:
                return
            self.clear_faults()
            need = self.options.min_faults - fired
            phase = f"fault top-up {attempt}"
            share = max(2, need // 4 + 1)
            for side, fields in (
                ("zendesk", {"kind": "status", "status": 429, "retry_after": 0}),
                ("zendesk", {"kind": "slow", "delay": 0.05}),
                ("superoffice", {"kind": "slow", "delay": 0.05}),
                ("superoffice", {"kind": "status", "status": 503, "retry_after": 0}),
            ):
                route = READS[side][0]
                self.add_fault(side, phase, {**fields, "route": route, "count": share})
            self.user_actions(phase, scale=0.5, jump=False)
            self.note(f"{phase}: {need} more faults wanted")
            self.child(("sync",), phase=phase)

    def _top_up_kills(self) -> None:
        """More killed runs, each with work to do, until at least `min_kills`."""
        rng = random.Random(f"{self.seed}:kills")
        for attempt in range(1, 9):
            if self.result.kills >= self.options.min_kills:
                return
            self.clear_faults()
            phase = f"kill top-up {attempt}"
            self.user_actions(phase, scale=0.5, jump=False)
            # work for the run: soft deletes of links active on both sides, to copy
            world = self.world
            both = [
                (s, z)
                for s, z in self.pairs
                if world.so_state(s) == "active" and world.zd_state(z) == "active"
            ]
            chosen = rng.sample(both, min(8, len(both)))
            world.so.soft_delete([s for s, _ in chosen])
            self.note(f"{phase}: superoffice soft delete {len(chosen)} (work for the run)")
            if attempt % 2:
                self.child(("sync",), phase=phase, crash_at="before_send:1")
            else:
                self.child(("sync",), phase=phase, kill_after=round(rng.uniform(0.8, 2.0), 2))

    # ---- children --------------------------------------------------------------------------

    def child(
        self,
        args: Sequence[str],
        *,
        phase: str,
        crash_at: str | None = None,
        kill_after: float | None = None,
        during: tuple[float, Callable[[], None]] | None = None,
    ) -> ChildRun:
        """Run `python -m bridge --config CFG ARGS`; SIGKILL it after `kill_after` seconds
        (if still running), do `during[1]()` `during[0]` seconds in (whatever happened),
        and wait for the lease after a kill."""
        world = self.world
        run = ChildRun(len(self.result.runs) + 1, phase, tuple(args), crash_at, kill_after)
        self.result.runs.append(run)
        out = self._logs / f"run-{run.number:02d}.out"
        err = self._logs / f"run-{run.number:02d}.err"
        started = time.monotonic()
        with out.open("w") as stdout, err.open("w") as stderr:
            process = subprocess.Popen(
                world.command(*args), env=world.env(crash_at), stdout=stdout, stderr=stderr
            )
            events: list[tuple[float, str]] = []
            if kill_after is not None:
                events.append((kill_after, "kill"))
            if during is not None:
                events.append((during[0], "act"))
            for at, what in sorted(events):
                left = started + at - time.monotonic()
                if left > 0:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.wait(timeout=left)
                if what == "act" and during is not None:
                    during[1]()
                elif what == "kill" and process.poll() is None:
                    process.send_signal(signal.SIGKILL)
            try:
                run.returncode = process.wait(timeout=CHILD_TIMEOUT)
            except subprocess.TimeoutExpired:
                run.timed_out = True
                process.kill()
                run.returncode = process.wait()
        run.seconds = time.monotonic() - started
        run.stderr_tail = err.read_text(errors="replace")[-2000:]
        self.note(run.describe())
        if run.timed_out:
            self.violate("child_hung", run.describe(), [run.stderr_tail[-300:]])
        if run.killed:
            time.sleep(LEASE_WAIT)  # the killed run's lease must expire first
        return run

    # ---- settle and check ------------------------------------------------------------------

    def _settle(self) -> None:
        self.clear_faults()
        finished = self.world.zd.finish_jobs()
        self.note(f"settle: faults cleared, {finished} Zendesk jobs finished")
        previous: int | None = None
        for _ in range(self.options.settle_runs):
            run = self.child(("sync",), phase="settle")
            self.world.zd.finish_jobs()
            if run.returncode == 0:
                return
            open_ops = self._open_operations()
            if run.returncode == previous == 4 and not open_ops:
                return  # what is left is the attention it reports
            if open_ops:  # give outcome waits (`OUTCOME_WAIT`) time to pass
                time.sleep(1.0)
            previous = run.returncode

    def _query(self, sql: str, **params: Any) -> list[RowMapping]:
        """Rows of a read of the ledger (SQL both backends take), through the engine of
        the ledger the world opened; each read in a transaction of its own, rolled back."""
        with self.world.ledger.engine.connect() as connection:
            return list(connection.execute(text(sql), params).mappings())

    def _open_operations(self) -> list[RowMapping]:
        planned, sent = OPEN_STATUSES
        return self._query(
            "SELECT id, link_id, target, ticket_id, transition, status, attempts, error, "
            "sent_at FROM operation WHERE status IN (:planned, :sent) ORDER BY id",
            planned=planned,
            sent=sent,
        )

    def _status_json(self) -> dict[str, Any] | None:
        done = self.world.bridge("status", "--json", timeout=CHILD_TIMEOUT)
        try:
            value = json.loads(done.stdout)
        except ValueError:
            value = None
        if done.returncode != 0 or not isinstance(value, dict):
            self.violate(
                "status_failed",
                f"bridge status --json exited {done.returncode}",
                [(done.stdout + done.stderr)[-300:]],
            )
            return None
        return value

    def purge_log(self, side: str) -> list[dict[str, Any]]:
        """The simulator's purge log, read as an out-of-process harness would."""
        answer = requests.get(f"{self.sim(side).admin_url}/purges", timeout=30)
        answer.raise_for_status()
        entries: list[dict[str, Any]] = answer.json()["purges"]
        return entries

    def check(self) -> None:
        """The invariants, against the simulators' ground truth and the ledger."""
        world = self.world
        settle = [r for r in self.result.runs if r.phase == "settle"]
        last_rc = settle[-1].returncode if settle else None
        links = {
            row["id"]: (row["first_id"], row["second_id"])
            for row in self._query("SELECT id, first_id, second_id FROM link")
        }
        pairs = {
            row["link_id"]: row
            for row in self._query(
                "SELECT link_id, base, first_state, second_state, attention, attention_reason "
                "FROM pair_state"
            )
        }
        attention = {k: p for k, p in pairs.items() if p["attention"] is not None}
        open_ops = self._open_operations()
        ops_by_link: dict[int, list[RowMapping]] = defaultdict(list)
        for op in open_ops:
            ops_by_link[op["link_id"]].append(op)
        retention = {
            row["link_id"]
            for row in self._query(
                "SELECT link_id FROM operation WHERE target = 'superoffice' AND "
                "transition = 'purge' AND status = 'pending_retention'"
            )
        }
        # open but not for any run to act on now: shown in the detail of a divergence
        waiting: dict[int, list[str]] = defaultdict(list)
        for row in self._query(
            "SELECT link_id, transition, status FROM operation "
            "WHERE status IN ('held', 'pending_retention') ORDER BY id"
        ):
            waiting[row["link_id"]].append(f"{row['transition']}:{row['status']}")

        # convergence
        diverged: dict[str, list[str]] = defaultdict(list)
        for link_id, (so_id, zd_id) in sorted(links.items()):
            so, zd = world.so_state(so_id), world.zd_state(zd_id)
            if so == zd or link_id in attention:
                continue
            if so == "deleted" and zd == "purged" and link_id in retention:
                continue  # SuperOffice purges only by retention: bridge waits for it
            pair = pairs.get(link_id)
            seen = (
                f"ledger so={pair['first_state']} zd={pair['second_state']} base={pair['base']}"
                if pair is not None
                else "no pair state"
            )
            active_ops = [f"{o['transition']}:{o['status']}" for o in ops_by_link[link_id]]
            kind = "diverged_with_open_op" if active_ops else "diverged_silently"
            ops = ", ".join(active_ops + waiting[link_id])
            suffix = f"; {ops}" if ops else ""
            where = f"link {link_id} so {so_id}={so} zd {zd_id}={zd}"
            diverged[kind].append(f"{where} ({seen}{suffix})")
        for kind, examples in diverged.items():
            self.violate(kind, "linked tickets differ after the clean runs", examples)

        # attention must be visible in `bridge status --json`
        status = self._status_json()
        if status is not None:
            shown = sum(int(n) for n in (status.get("attention") or {}).values())
            rows = {
                (r["superoffice_id"], r["zendesk_id"]) for r in status.get("needs_attention", [])
            }
            expected = {links[k] for k in attention if k in links}
            hidden = rows - expected
            if shown != len(attention) or hidden:
                self.violate(
                    "attention_not_reported",
                    f"ledger has {len(attention)} attention links, status --json counts {shown}",
                    [f"shown but not in ledger: {sorted(hidden)[:5]}"] if hidden else [],
                )
            self.note(
                f"status: attention {status.get('attention')}, operations "
                f"{status.get('operations')}"
            )

        # operations left open
        groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        for op in open_ops:
            kind = "open_op_unreported" if last_rc == 0 else "open_op_stuck"
            groups[(kind, op["transition"], op["status"])].append(
                f"op {op['id']} link {op['link_id']} {op['target']} {op['ticket_id']} "
                f"attempts {op['attempts']} error {op['error']!r}"
            )
        for (kind, transition, state), examples in groups.items():
            self.violate(
                kind,
                f"{transition} left {state!r} after the clean runs (last exit {last_rc})",
                examples,
            )
        self._check_purges()

    def _check_purges(self) -> None:
        for side in ("zendesk", "superoffice"):
            log = self.purge_log(side)
            self.result.purge_requests[side] = len({e["request"] for e in log})
            dup = [e for e in log if e["duplicate"]]
            if dup:
                self.violate(
                    "duplicate_purge",
                    f"{side} accepted purges of tickets already purged or being purged",
                    [
                        f"{side} {e['ticket_id']} ({e['prior']}) {e['route']} at {e['at']}"
                        for e in dup
                    ],
                )
            per_ticket: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for entry in log:
                if entry["outcome"] != "failed":  # a failed job did nothing: retry is fine
                    per_ticket[entry["ticket_id"]].append(entry)
            repeated = {t: e for t, e in per_ticket.items() if len(e) > 1}
            if repeated:
                self.violate(
                    "repeated_purge",
                    f"{side} tickets with more than one accepted purge request",
                    [
                        f"{side} {t}: "
                        + ", ".join(f"{e['outcome']}@{e['at'][11:19]}" for e in entries)
                        for t, entries in sorted(repeated.items())
                    ],
                )
            live = [e for e in log if e["state"] == "active"]
            if live:
                self.violate(
                    "purge_of_live_ticket",
                    f"{side} accepted purge requests naming tickets active at the time",
                    [f"{side} {e['ticket_id']} at {e['at']}" for e in live],
                )

    def _final_sync(self) -> None:
        """One more clean sync: exit 0 (4 only with attention reported), no writes."""
        before = {side: self.sim(side).counts()["routes"] for side in ("zendesk", "superoffice")}
        attention = self._query("SELECT COUNT(*) AS n FROM pair_state WHERE attention IS NOT NULL")
        run = self.child(("sync",), phase="final")
        self.world.zd.finish_jobs()
        allowed = {0, 4} if attention[0]["n"] else {0}
        if run.returncode not in allowed:
            self.violate(
                "final_sync_exit",
                f"the final clean sync exited {run.returncode} (expected {sorted(allowed)})",
                [run.stderr_tail[-300:]] if run.stderr_tail.strip() else [],
            )
        writes = []
        for side in ("zendesk", "superoffice"):
            after = self.sim(side).counts()["routes"]
            for route, n in sorted(after.items()):
                extra = n - before[side].get(route, 0)
                if extra and is_write(route):
                    writes.append(f"{side} {route} x{extra}")
        if writes:
            self.violate("final_sync_wrote", "the final clean sync made write requests", writes)
        stuck = self._query("SELECT id, kind FROM run WHERE outcome = 'running' ORDER BY id")
        if stuck:
            self.violate(
                "run_left_running",
                "runs still 'running' in the ledger after the final sync",
                [f"run {r['id']} ({r['kind']})" for r in stuck],
            )


FAULT_FAMILIES = ("429", "503", "500", "drop", "slow", "malformed", "job_failed", "purge", "any")


def random_fault(rng: random.Random, family: str | None = None) -> tuple[str, dict[str, Any]]:
    """One seeded fault rule: (simulator side, `add_fault` fields with `kind`), of
    `family` (one of `FAULT_FAMILIES`) or a random one."""
    drawn = rng.choices(FAULT_FAMILIES, weights=(3, 3, 2, 2, 2, 2, 1, 3, 1))[0]
    family = family or drawn
    side = rng.choice(("zendesk", "superoffice"))
    when = rng.choice(("before", "after"))
    count = rng.randint(1, 3)
    probability = None if rng.random() < 0.6 else round(rng.uniform(0.3, 0.8), 2)
    route = rng.choice(READS[side] + WRITES[side])
    trigger: dict[str, Any] = {"count": count}
    if probability is not None:
        trigger["probability"] = probability
    if family == "purge":
        kind, status, when = rng.choice(PURGE_FAULTS)
        fields: dict[str, Any] = {"kind": kind, "route": ZD_PURGE, "when": when, "count": 1}
        if status is not None:
            fields["status"] = status
            if status in (429, 503):
                # 0: the client resends at once, while the first job may still be queued
                fields["retry_after"] = rng.choice((0, 1))
        return "zendesk", fields
    if family == "job_failed":
        return "zendesk", {
            "kind": "job_failed",
            "route": rng.choice(ZD_JOB_ROUTES),
            "count": rng.randint(1, 2),
        }
    if family == "429":  # a storm: several in a row, on what bridge reads most
        return side, {
            "kind": "status",
            "status": 429,
            "retry_after": rng.choice((0, 1, 1, 2)),
            "route": rng.choice((READS[side][0], route)),
            "when": "before",
            "count": rng.randint(2, 5),
        }
    if family in ("503", "500"):
        fields = {"kind": "status", "status": int(family), "route": route, "when": when}
        retry = rng.choice((None, 0, 1))
        if family == "503" and retry is not None:
            fields["retry_after"] = retry
        return side, {**fields, **trigger}
    if family == "drop":
        return side, {"kind": "drop", "route": route, "when": when, **trigger}
    if family == "slow":
        return side, {
            "kind": "slow",
            "route": route,
            "when": when,
            "delay": round(rng.uniform(0.05, 0.5), 2),
            "count": rng.randint(2, 5),
        }
    if family == "malformed":
        return side, {"kind": "malformed", "route": route, **trigger}
    # any: rare faults on any request of one simulator
    kind = rng.choice(("status", "drop"))
    fields = {"kind": kind, "when": when, "probability": round(rng.uniform(0.05, 0.15), 2)}
    if kind == "status":
        fields["status"] = 503
    return side, {**fields, "count": rng.randint(2, 4)}


def run_trial(
    seed: int,
    folder: Path | None = None,
    *,
    keep: bool = False,
    options: TrialOptions | None = None,
    ledger_url: str | None = None,
) -> TrialResult:
    """Run the trial of `seed` in `folder` (default: a temporary one, removed unless
    `keep`), its ledger at `ledger_url` (default: the config's SQLite file); never raises
    for what happens inside: a harness failure is a violation."""
    made = folder is None
    base = Path(tempfile.mkdtemp(prefix=f"bridge-trial-{seed}-")) if made else folder
    assert base is not None
    if (base / "bridge").exists():
        raise FileExistsError(f"{base} holds an earlier trial (its ledger): use a new folder")
    base.mkdir(parents=True, exist_ok=True)
    try:
        return Trial(seed, base, options, ledger_url=ledger_url).run()
    finally:
        if made and not keep:
            shutil.rmtree(base, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one seeded fault-and-kill trial.")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--verbose", "-v", action="store_true", help="print the timeline")
    parser.add_argument(
        "--control", action="store_true", help="the same scenario with no fault and no kill"
    )
    args = parser.parse_args(argv)
    options = TrialOptions.control() if args.control else None
    result = run_trial(args.seed, args.keep, keep=args.keep is not None, options=options)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(result.report(verbose=args.verbose))
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
