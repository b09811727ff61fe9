"""Bad values on the command line: ids, intervals, dates, counts, ports, unknown and
missing options. Each is refused with exit 2 and one `Error:` line naming the option and
what is wrong with the value, before anything is read or written."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.badinput.conftest import (
    Expect,
    Verdict,
    World,
    ids,
    ledger_dump,
    run_bridge,
    sandbox_world,
    unique_ids,
)

HUGE = "1" + "0" * 30  # 10**30
SO_MAX = 2**31 - 1
# digits of other scripts, written as escapes (they look like ASCII digits, or nothing)
ARABIC_123 = "\u0661\u0662\u0663"  # Arabic-Indic 123
ARABIC_5M = "\u0665m"  # Arabic-Indic 5, then m
ARABIC_8081 = "\u0668\u0660\u0668\u0661"  # Arabic-Indic 8081
ARABIC_DATE = "\u0662\u0660\u0662\u0666-\u0660\u0661-\u0660\u0661"  # Arabic-Indic 2026-01-01


@dataclass(frozen=True)
class CliCase:
    id: str
    args: tuple[str, ...]
    words: tuple[str, ...]
    #: a value taken by mistake could start a loop, a server or a demo: it is killed
    timeout: float = 30.0
    code: int = 2


def resolve(case_id: str, link: str, *words: str) -> CliCase:
    return CliCase(
        f"resolve-{case_id}", ("conflicts", "resolve", link, "--prefer", "zendesk"), words
    )


def every(case_id: str, value: str, *words: str) -> CliCase:
    return CliCase(f"every-{case_id}", ("sync", "--every", value), words, timeout=10)


def report(case_id: str, *args: str, words: tuple[str, ...]) -> CliCase:
    return CliCase(f"report-{case_id}", ("report", *args, "-o", "report.html"), words)


def port(case_id: str, *args: str, words: tuple[str, ...]) -> CliCase:
    return CliCase(f"sandbox-{case_id}", ("sandbox", *args), words, timeout=10)


def tickets(case_id: str, value: str, *words: str) -> CliCase:
    return CliCase(
        f"demo-tickets-{case_id}", ("demo", "--dir", "demo", "--tickets", value), words, timeout=20
    )


CASES = unique_ids(
    [
        # --- conflicts resolve LINK --prefer zendesk: a SuperOffice ticket id --------------
        resolve("arabic-indic-digits", ARABIC_123, "LINK", ARABIC_123),
        resolve("underscore", "1_000", "LINK", "1_000"),
        resolve("leading-plus", "+12", "LINK", "+12"),
        resolve("inner-space", "1 2", "LINK", "1 2"),
        resolve("negative", "-1", "-1"),
        resolve("zero", "0", "LINK", "out of range"),
        resolve("huge-10e30", HUGE, "LINK", "out of range"),
        resolve("so-max-plus-one", str(SO_MAX + 1), "LINK", "out of range"),
        resolve("empty", "", "LINK", "empty"),
        resolve("no-such-link", str(SO_MAX), "no link", str(SO_MAX)),
        resolve("link-without-conflict", "1", "1", "conflict"),
        CliCase("resolve-missing-prefer", ("conflicts", "resolve", "1"), ("--prefer",)),
        # --- sync --every INTERVAL (1s to 7d) ------------------------------------------
        every("zero", "0", "--every", "range"),
        every("negative", "-5m", "--every", "-5m"),
        every("unknown-unit", "5x", "--every", "5x"),
        every("huge-days", "99999999999d", "--every", "range"),
        every("huge-seconds-10e30", HUGE + "s", "--every", "range"),
        every("over-a-week", "8d", "--every", "range"),
        every("empty", "", "--every"),
        every("underscore", "1_000s", "--every", "1_000s"),
        every("arabic-indic-digit", ARABIC_5M, "--every", ARABIC_5M),
        # --- report --since/--until DATE, --detail-rows N, --output --------------------
        report("since-month-13", "--since", "2026-13-01", words=("--since", "2026-13-01")),
        report("since-year-0", "--since", "0000-01-01", words=("--since", "0000-01-01")),
        report("since-year-9999", "--since", "9999-12-31", words=("9999-12-31",)),
        report("since-1969", "--since", "1969-12-31", words=("--since", "1969")),
        report("until-year-9999", "--until", "9999-12-31", words=("--until", "9999-12-31")),
        report("since-hour-25", "--since", "2026-01-01T25:00", words=("--since", "T25:00")),
        report("since-arabic-indic", "--since", ARABIC_DATE, words=("--since", ARABIC_DATE)),
        report(
            "until-before-since",
            *("--since", "2026-03-02", "--until", "2026-03-01"),
            words=("--until", "--since"),
        ),
        report(
            "until-equals-since",
            *("--since", "2026-03-02T10:00:00Z", "--until", "2026-03-02T10:00:00Z"),
            words=("--until", "--since"),
        ),
        report("detail-rows-negative", "--detail-rows", "-1", words=("--detail-rows", "-1")),
        report(
            "detail-rows-underscore", "--detail-rows", "1_000", words=("--detail-rows", "1_000")
        ),
        report("detail-rows-huge-10e30", "--detail-rows", HUGE, words=("--detail-rows", "range")),
        CliCase(
            "report-output-in-missing-folder",
            ("report", "-o", "missing/folder/report.html"),
            ("cannot write", "report.html"),
        ),
        # --- sandbox: fail fast, never start a server ---------------------------------
        port("zendesk-port-70000", "zendesk", "--port", "70000", words=("--port", "70000")),
        port("zendesk-port-negative", "zendesk", "--port", "-1", words=("--port", "-1")),
        port("zendesk-port-word", "zendesk", "--port", "abc", words=("--port", "abc")),
        port(
            "zendesk-port-arabic-indic",
            "zendesk",
            "--port",
            ARABIC_8081,
            words=("--port", ARABIC_8081),
        ),
        port("serve-zendesk-port-99999", "serve", "--zendesk-port", "99999", words=("99999",)),
        port(
            "superoffice-retention-days-negative",
            *("superoffice", "--port", "0", "--retention-days", "-1"),
            words=("--retention-days", "-1"),
        ),
        port(
            "superoffice-retention-days-nan",
            *("superoffice", "--port", "0", "--retention-days", "nan"),
            words=("--retention-days", "nan"),
        ),
        port(
            "zendesk-unknown-plan",
            *("zendesk", "--port", "0", "--plan", "bogus"),
            words=("--plan", "bogus"),
        ),
        # --- demo --tickets N (100 to 50,000) -----------------------------------------
        tickets("99", "99", "--tickets", "range"),
        tickets("underscore", "1_000", "--tickets", "1_000"),
        tickets("huge-10e30", HUGE, "--tickets", "range"),
        # --- unknown and missing options, commands and arguments ------------------------
        CliCase("unknown-global-option", ("--bogus", "status"), ("--bogus",)),
        CliCase("unknown-command", ("frobnicate",), ("frobnicate",)),
        CliCase("migrate-without-from", ("migrate", "--to", "zendesk"), ("--from",)),
        CliCase(
            "migrate-same-system",
            ("migrate", "--from", "superoffice", "--to", "superoffice"),
            ("--from", "--to"),
        ),
        CliCase(
            "migrate-include-and-skip-purges",
            (
                *("migrate", "--from", "superoffice", "--to", "zendesk"),
                *("--include-purges", "--skip-purges"),
            ),
            ("--include-purges", "--skip-purges"),
        ),
        CliCase("init-over-existing-config", ("init", "--dir", "config"), ("exists", "--force")),
    ]
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Three linked pairs and no conflict: a value taken by mistake may name a real link."""
    with sandbox_world(tmp_path_factory.mktemp("cli") / "bridge") as world:
        world.link(3)
        yield world


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_command_line_value_is_refused(world: World, case: CliCase, tmp_path: Path) -> None:
    # the folder bridge runs in: `report` writes there, `demo --dir a-file` names a file,
    # `init --dir config` a folder that already holds a config
    (tmp_path / "a-file").write_text("not a folder\n", encoding="utf-8")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "bridge.toml").write_text("# someone's config\n", encoding="utf-8")
    ledger = world.folder / "bridge.db"
    before = ledger_dump(ledger)
    world.reset_counters()
    outcome = run_bridge(world.config_path, *case.args, cwd=tmp_path, timeout=case.timeout)
    verdict = Verdict(outcome, Expect(code=case.code, words=case.words))
    verdict.exit_code()
    verdict.message()
    verdict.no_writes(world.sandbox)
    verdict.same_dump(before, ledger_dump(ledger))
    if (tmp_path / "config" / "bridge.toml").read_text(encoding="utf-8") != "# someone's config\n":
        verdict.add("overwrote", "an existing config file was overwritten")
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name not in ("a-file", "config"))
    if leftovers:
        verdict.add("files", f"the command left files behind: {leftovers}")
    verdict.conclude()
