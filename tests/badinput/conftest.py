"""The bad-input corpus: shared set-up and the checks every case makes.

Each case runs the real command line as a child process (`python -m bridge --config CFG
...`) against both simulators on loopback and checks four things:

1. the exit code (2: bad configuration, input or usage; 5: a vendor could not be read);
2. the message: one line on stderr starting with `Error:` that holds the expected words
   (for config and link-file errors, the documented `file:key: problem` or `FILE:line N:`
   lines under it count too), and no traceback anywhere;
3. that neither simulator saw a write request (a route whose name starts with DELETE,
   PUT, POST or PATCH);
4. that the ledger did not change: a logical dump of a copy of the database (the main
   file and its WAL; on PostgreSQL, of the database itself), or the bytes of every
   `bridge.db*` file where no fixture holds the ledger open.

`module_ledger_url` runs a module's world on each backend in turn (SQLite, then a
PostgreSQL database of the module's own).

A case collects every broken expectation before it fails, so that one run of the corpus
shows everything wrong with each input, not only the first thing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from bridge.sandbox_pair import Sandbox
from tests.sandbox_world import SandboxWorld, running_sandbox

__all__ = [
    "SPEED",
    "Dump",
    "Expect",
    "Outcome",
    "Verdict",
    "World",
    "bridge_command",
    "dump_diff",
    "file_hashes",
    "ids",
    "ledger_dump",
    "run_bridge",
    "sandbox_world",
    "unique_ids",
    "write_requests",
]

#: simulated seconds per real second (vendor jobs finish if a bad input ever gets through)
SPEED = 50.0
#: a route is a write when its name starts with one of these
WRITE_METHODS = ("DELETE ", "PUT ", "POST ", "PATCH ")
#: the environment variables a case must not inherit
_SCRUBBED_ENV = ("BRIDGE_CONFIG", "BRIDGE_CRASH_AT")


# --- the simulators and a config for them ------------------------------------------------


class World(SandboxWorld):
    """The simulators, a config and ledger for them, and bridge run from a folder of its
    own (a report without --output lands there, not in the repository)."""

    #: bridge's own SuperOffice throttle would only slow the cases down
    client_rps = 1000


@contextmanager
def sandbox_world(folder: Path, *, ledger_url: str | None = None, **sync: str) -> Iterator[World]:
    """Both simulators on a clock running `SPEED` times real time, started 20 days in the
    past (bridge in a child process runs on the wall clock), limits off; the ledger at
    `ledger_url` (None: the config's own SQLite file)."""
    start = datetime.now(UTC) - timedelta(days=20)
    with running_sandbox(SPEED, start=start) as sandbox:
        world = World(sandbox, folder, ledger_url=ledger_url, max_purges_per_run="1000", **sync)
        try:
            yield world
        finally:
            world.close()


def write_requests(sandbox: Sandbox) -> dict[str, int]:
    """Write requests either simulator received since its counters were reset."""
    found: dict[str, int] = {}
    for side, sim in (("zendesk", sandbox.zendesk), ("superoffice", sandbox.superoffice)):
        for route, count in sim.counts()["routes"].items():
            if count and route.startswith(WRITE_METHODS):
                found[f"{side} {route}"] = count
    return found


# --- running bridge ----------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How one child process ended."""

    args: tuple[str, ...]
    code: int | None  # None: killed at the timeout
    stdout: str
    stderr: str
    seconds: float

    @property
    def timed_out(self) -> bool:
        return self.code is None

    def human_lines(self) -> list[str]:
        """stderr without the structured log lines (JSON objects, one a line)."""
        return [line for line in self.stderr.splitlines() if not _is_log_line(line)]

    def log_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if _is_log_line(line)]

    def shown(self, lines: int = 6) -> str:
        """The command and how it ended, for a failure message."""
        ended = "killed at the timeout" if self.timed_out else f"exit {self.code}"
        err = self.stderr.strip().splitlines()[:lines] or ["(empty)"]
        out = self.stdout.strip().splitlines()[:3] or ["(empty)"]
        return "\n".join(
            [
                f"command: bridge {' '.join(_quote(a) for a in self.args)}",
                f"actual:  {ended} after {self.seconds:.1f} s",
                "  stderr: " + "\n          ".join(line[:300] for line in err),
                "  stdout: " + "\n          ".join(line[:200] for line in out),
            ]
        )


def _quote(arg: str) -> str:
    return arg if arg and all(c.isalnum() or c in "-_./=:" for c in arg) else repr(arg)


def _is_log_line(line: str) -> bool:
    text = line.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return False
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def bridge_command(config: Path, *args: str) -> list[str]:
    """The command line `SandboxWorld.command` builds, for any config path."""
    return [sys.executable, "-m", "bridge", "--config", str(config), *args]


def run_bridge(
    config: Path,
    *args: str,
    cwd: Path,
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
) -> Outcome:
    """`python -m bridge --config CONFIG ARGS` in `cwd`; killed after `timeout` seconds
    (a server that started, a loop that began: the case then fails on the exit code)."""
    child_env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    child_env.update(env or {})
    started = time.monotonic()
    try:
        done = subprocess.run(
            bridge_command(config, *args),
            cwd=cwd,
            env=child_env,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return Outcome(
            tuple(args),
            None,
            _text(exc.stdout),
            _text(exc.stderr),
            time.monotonic() - started,
        )
    return Outcome(
        tuple(args), done.returncode, done.stdout, done.stderr, time.monotonic() - started
    )


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


# --- the ledger --------------------------------------------------------------------------

Dump = dict[str, list[tuple[Any, ...]]]


def ledger_dump(where: Path | str) -> Dump:
    """Every table's rows (sorted) and the schema of the ledger at `where`: a SQLite file
    or a ledger URL. SQLite is read from a copy of the main file and its WAL, so that
    neither the fixture's open connection nor a checkpoint can make equal ledgers look
    different (or the reverse); PostgreSQL in one snapshot of its own."""
    if isinstance(where, str):
        url = make_url(where)
        if url.get_backend_name() != "sqlite":
            return _postgres_dump(where)
        assert url.database, where
        where = Path(url.database)
    path = where
    with tempfile.TemporaryDirectory(prefix="badinput-dump-") as folder:
        copy = Path(folder) / "ledger.db"
        shutil.copyfile(path, copy)
        wal = Path(f"{path}-wal")
        if wal.exists():
            shutil.copyfile(wal, Path(f"{copy}-wal"))
        connection = sqlite3.connect(copy)
        try:
            dump: Dump = {}
            columns: dict[str, tuple[str, ...]] = {}
            schema = connection.execute(
                "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
                "ORDER BY type, name"
            ).fetchall()
            dump["(schema)"] = [tuple(row) for row in schema]
            for _type, name, _sql in schema:
                if _type != "table":
                    continue
                cursor = connection.execute(f'SELECT * FROM "{name}"')
                columns[name] = tuple(c[0] for c in cursor.description)
                dump[name] = sorted((tuple(r) for r in cursor.fetchall()), key=repr)
            dump["(columns)"] = sorted(columns.items())
            return dump
        finally:
            connection.close()


#: the schema of a PostgreSQL ledger: its tables, columns, indexes and constraints (not the
#: sequences' positions, which move on even in a transaction rolled back)
_PG_SCHEMA = (
    "SELECT 'table', table_name, table_type FROM information_schema.tables "
    "WHERE table_schema = 'public'",
    "SELECT 'column', table_name || '.' || column_name, "
    "concat_ws(' ', data_type, is_nullable, column_default) FROM information_schema.columns "
    "WHERE table_schema = 'public'",
    "SELECT 'index', indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "SELECT 'constraint', c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
    "JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'public'",
    "SELECT 'sequence', sequencename, data_type::text FROM pg_sequences "
    "WHERE schemaname = 'public'",
)


def _postgres_dump(url: str) -> Dump:
    """`ledger_dump` of a PostgreSQL ledger, read in one repeatable-read transaction."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as c:
            schema = sorted(tuple(row) for query in _PG_SCHEMA for row in c.execute(text(query)))
            dump: Dump = {"(schema)": schema}
            columns: dict[str, tuple[str, ...]] = {}
            for kind, name, _ in schema:
                if kind != "table":
                    continue
                result = c.execute(text(f'SELECT * FROM "{name}"'))
                columns[name] = tuple(result.keys())
                dump[name] = sorted((tuple(r) for r in result), key=repr)
            dump["(columns)"] = sorted(columns.items())
            return dump
    finally:
        engine.dispose()


def dump_diff(before: Dump, after: Dump, *, limit: int = 4) -> list[str]:
    """One line per table that differs: rows added and removed (a few shown)."""
    lines: list[str] = []
    for table in sorted(set(before) | set(after)):
        old, new = before.get(table, []), after.get(table, [])
        if old == new:
            continue
        added = [r for r in new if r not in old]
        removed = [r for r in old if r not in new]
        shown = [f"+{r!r}"[:220] for r in added[:limit]] + [
            f"-{r!r}"[:220] for r in removed[:limit]
        ]
        lines.append(
            f"table {table}: {len(added)} row(s) added, {len(removed)} removed: " + "; ".join(shown)
        )
    return lines


def file_hashes(folder: Path, name: str = "bridge.db") -> dict[str, str]:
    """sha256 of the ledger file and every sidecar beside it (`-wal`, `-shm`, `-journal`),
    for ledgers no fixture holds open; a folder in place of the file is `<folder>`."""
    found: dict[str, str] = {}
    for path in sorted(folder.glob(f"{name}*")):
        if path.is_dir():
            found[path.name] = "<folder>"
        else:
            found[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return found


# --- the verdict -------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """What a case expects of the command: its exit code and the words its message holds.

    `in_block`: the words may be in the documented detail lines under the `Error:` line
    (`FILE:line N: ...` of a link file, `file:key: problem` of a config), not only in it.
    `problem_lines`: a config case; `file:key: problem` lines without an `Error:` line
    (what `bridge check` prints) count as the message. `absent`: text that must appear
    nowhere in the output (a secret). `stdout_words`: for accepted input.
    """

    code: int = 2
    words: tuple[str, ...] = ()
    in_block: bool = False
    problem_lines: bool = False
    absent: tuple[str, ...] = ()
    stdout_words: tuple[str, ...] = ()


@dataclass
class Verdict:
    """Every expectation a case broke, collected before it fails."""

    outcome: Outcome
    expect: Expect
    problems: list[str] = field(default_factory=list)

    def add(self, tag: str, message: str) -> None:
        self.problems.append(f"[{tag}] {message}")

    # --- the four checks -------------------------------------------------------------

    def exit_code(self) -> None:
        out = self.outcome
        if out.timed_out:
            self.add("exit", f"expected exit {self.expect.code}, the command was still running")
        elif out.code != self.expect.code:
            self.add("exit", f"expected exit {self.expect.code}, got {out.code}")

    def message(self) -> None:
        out, expect = self.outcome, self.expect
        everything = out.stdout + out.stderr
        if "Traceback" in everything:
            self.add("traceback", "a Python traceback was printed")
        for secret in expect.absent:
            if secret in everything:
                self.add("leak", f"the output shows {secret!r}")
        if expect.code == 0:
            for word in expect.stdout_words:
                if word.lower() not in out.stdout.lower():
                    self.add("message", f"stdout lacks {word!r}")
            return
        if out.timed_out or out.code == 0:
            return  # the input was taken: the exit code says it all
        lines = out.human_lines()
        errors = [i for i, line in enumerate(lines) if line.startswith("Error:")]
        if len(errors) > 1:
            self.add("message", f"{len(errors)} lines start with 'Error:' (expected one)")
        if errors:
            first = errors[0]
            block = [lines[first]]
            if expect.in_block:
                for line in lines[first + 1 :]:
                    if not line[:1].isspace():
                        break
                    block.append(line)
            where = "the Error: line" if len(block) == 1 else "the Error: block"
        elif expect.problem_lines and any(_is_problem_line(line) for line in lines):
            block = [line for line in lines if _is_problem_line(line)]
            where = "the file:key: problem lines"
        else:
            logged = "; ".join(line[:200] for line in out.log_lines()[:2])
            self.add(
                "no-error-line",
                "no line on stderr starts with 'Error:'"
                + (f" (the log says: {logged})" if logged else ""),
            )
            return
        text = "\n".join(block).lower()
        missing = [w for w in expect.words if w.lower() not in text]
        if missing:
            self.add("words", f"{where} lacks {missing}: {block[0][:200] if block else ''}")

    def no_writes(self, sandbox: Sandbox) -> None:
        writes = write_requests(sandbox)
        if writes:
            self.add("vendor-write", f"the simulators saw writes: {writes}")

    def same_files(self, before: dict[str, str], after: dict[str, str]) -> None:
        if before != after:
            self.add("ledger", f"the ledger files changed: {before} -> {after}")

    def same_dump(self, before: Dump, after: Dump, *, what: str = "the ledger changed") -> None:
        diff = dump_diff(before, after)
        if diff:
            self.add("ledger", f"{what}: " + " | ".join(diff))

    # ---------------------------------------------------------------------------------

    def conclude(self, *context: str, promise: str = "no writes, ledger unchanged") -> None:
        """Fail with the command, what was expected and what happened, when anything broke."""
        if not self.problems:
            return
        expect = self.expect
        wanted = f"exit {expect.code}"
        if expect.code == 0:
            wanted += " (acceptable input)"
        else:
            wanted += f", an 'Error:' message naming {list(expect.words)}"
        report = [
            f"{len(self.problems)} expectation(s) broken",
            f"expected: {wanted}, {promise}",
            self.outcome.shown(),
            *context,
            *self.problems,
        ]
        pytest.fail("\n".join(report), pytrace=False)


def _is_problem_line(line: str) -> bool:
    """`  /path/bridge.toml:zendesk.base_url: ...` or `problem  /path/bridge.toml:key: ...`."""
    text = line.strip()
    if text.startswith("problem "):
        text = text[len("problem ") :].strip()
    head, sep, rest = text.partition(".toml:")
    return bool(sep and head and rest.partition(": ")[1])


def ids(cases: Iterable[Any]) -> list[str]:
    return [case.id for case in cases]


def unique_ids(cases: Sequence[Any]) -> Sequence[Any]:
    """The case list, checked for repeated ids (a parametrize id must name one case)."""
    seen: set[str] = set()
    for case in cases:
        assert case.id not in seen, f"case id {case.id} is used twice"
        seen.add(case.id)
    return cases
